"""WSGI entry point of the stand-in ATO: ``gunicorn ato_sandbox.wsgi:application``.

Plain WSGI, no Django: the data directory comes from ``ATO_SANDBOX_DATA_DIR`` (``manage.py run_ato_sandbox`` sets
it), and the sleep of the ``timeout`` fault from ``ATO_SANDBOX_TIMEOUT_SECONDS`` (default 5 s; a control call may
change it at run time). What the front door accepts (docs/wire-contract.md): ``ATO_SANDBOX_MAX_BODY_BYTES`` (64
MiB), ``ATO_SANDBOX_MAX_INFLATED_BYTES`` (all of one message's parts together, 64 MiB),
``ATO_SANDBOX_TIMESTAMP_WINDOW_SECONDS`` (how far an eb:Timestamp may be from now, 300) and
``ATO_SANDBOX_AUDIENCES`` (comma-separated AppliesTo addresses it issues and accepts tokens for). The control and
inspection pages (``/_control/``, ``/_inspect``) answer only from this machine, or to a request whose
``X-Sandbox-Token`` header is ``ATO_SANDBOX_CONTROL_TOKEN``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from .app import Limits, SandboxApp
from .faults import DEFAULT_TIMEOUT_SECONDS

DATA_DIR_ENV = "ATO_SANDBOX_DATA_DIR"
TIMEOUT_ENV = "ATO_SANDBOX_TIMEOUT_SECONDS"

logging.basicConfig(level=os.environ.get("ATO_SANDBOX_LOG_LEVEL", "INFO"))


def limits_from(environ: Mapping[str, str]) -> Limits:
    default = Limits()
    audiences = [a.strip() for a in environ.get("ATO_SANDBOX_AUDIENCES", "").split(",") if a.strip()]
    window = environ.get("ATO_SANDBOX_TIMESTAMP_WINDOW_SECONDS")
    return Limits(
        max_body_bytes=int(environ.get("ATO_SANDBOX_MAX_BODY_BYTES") or default.max_body_bytes),
        max_inflated_bytes=int(environ.get("ATO_SANDBOX_MAX_INFLATED_BYTES") or default.max_inflated_bytes),
        timestamp_window=timedelta(seconds=float(window)) if window else default.timestamp_window,
        audiences=frozenset(audiences) if audiences else default.audiences,
    )


application = SandboxApp(
    Path(os.environ.get(DATA_DIR_ENV, "var/ato_sandbox")).resolve(),
    default_timeout_seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS)),
    limits=limits_from(os.environ),
)
