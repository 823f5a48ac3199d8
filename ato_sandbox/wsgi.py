"""WSGI entry point of the stand-in ATO: ``gunicorn ato_sandbox.wsgi:application``.

Plain WSGI, no Django: the data directory comes from ``ATO_SANDBOX_DATA_DIR`` (``manage.py run_ato_sandbox`` sets
it), and the sleep of the ``timeout`` fault from ``ATO_SANDBOX_TIMEOUT_SECONDS`` (default 5 s; a control call may
change it at run time).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .app import SandboxApp
from .faults import DEFAULT_TIMEOUT_SECONDS

DATA_DIR_ENV = "ATO_SANDBOX_DATA_DIR"
TIMEOUT_ENV = "ATO_SANDBOX_TIMEOUT_SECONDS"

logging.basicConfig(level=os.environ.get("ATO_SANDBOX_LOG_LEVEL", "INFO"))

application = SandboxApp(
    Path(os.environ.get(DATA_DIR_ENV, "var/ato_sandbox")).resolve(),
    default_timeout_seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS)),
)
