"""``manage.py run_ato_sandbox --port N``: start the stand-in ATO (gunicorn, gthread workers) on its own port.

The command prepares the data directory (PKI, demo keystore, database) once, before any worker exists, and then
replaces itself with gunicorn, so that stopping it (SIGTERM to this process id) stops the server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from gunicorn import config as gunicorn_config

from ato_sandbox import pki
from ato_sandbox.storage import Storage
from ato_sandbox.wsgi import DATA_DIR_ENV


class Command(BaseCommand):
    help = "Run the stand-in ATO (STS and ebMS3 endpoints, fault injection) on its own port."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--data-dir",
            default=str(Path(settings.BASE_DIR) / "var" / "ato_sandbox"),
            help="its keys, certificates, demo keystore and database (created on first start)",
        )
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(options["data_dir"]).resolve()
        pki.ensure(data_dir)
        Storage(data_dir / "sandbox.sqlite3").initialise()
        self.stdout.write(
            f"Stand-in ATO on http://{options['host']}:{options['port']} (data: {data_dir}; "
            f"its signing certificate: {data_dir / pki.SIGNING_CERT}; demo keystore: "
            f"{data_dir / pki.DEMO_KEYSTORE}, password {pki.DEMO_KEYSTORE_PASSWORD})"
        )
        self.stdout.flush()
        environment = {**os.environ, DATA_DIR_ENV: str(data_dir)}
        arguments = [
            sys.executable,
            "-m",
            "gunicorn",
            "ato_sandbox.wsgi:application",
            "--bind",
            f"{options['host']}:{options['port']}",
            "--worker-class",
            "gthread",
            "--workers",
            str(options["workers"]),
            "--threads",
            str(options["threads"]),
            # A thread may sleep through an injected timeout; the worker's heartbeat is unaffected, but keep the
            # arbiter's patience well above the longest sleep anyway.
            "--timeout",
            "120",
            "--graceful-timeout",
            "5",
            "--chdir",
            str(Path(settings.BASE_DIR)),
        ]
        if hasattr(gunicorn_config, "ControlSocket"):
            # gunicorn >= 25.1 opens a control socket at one path per user: two sandboxes (tests run several)
            # would fight over it, and the stand-in needs none.
            arguments.append("--no-control-socket")
        os.execve(sys.executable, arguments, environment)  # noqa: S606 - a fixed argument list, no shell
