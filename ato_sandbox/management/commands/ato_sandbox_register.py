"""``manage.py ato_sandbox_register --data-dir D [--seed N] [--taxpayers N] [--agent TAN:ABN:KIND:CLIENTS ...]
[--reset-only]``: regenerate (or just clear) the stand-in ATO's synthetic client register in its data directory.

Like ``run_ato_sandbox`` it touches only the sandbox's own SQLite file, never the portal's database, so it runs
wherever the stand-in does. A running sandbox sees the new register at once (one file, WAL mode).
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from stdnum.au import abn as stdnum_abn

from ato_sandbox import register
from ato_sandbox.storage import Storage


def parse_agent(text: str, letters_per_client: float) -> register.AgentSpec:
    """``TAN:ABN:KIND:CLIENTS[:NAME]`` (the name may itself contain colons)."""
    parts = text.split(":", 4)
    if len(parts) < 4:
        raise CommandError(f"--agent {text!r}: expected TAN:ABN:KIND:CLIENTS[:NAME]")
    tan, number, kind, clients = (part.strip() for part in parts[:4])
    if not tan:
        raise CommandError(f"--agent {text!r}: the TAN is empty")
    if not stdnum_abn.is_valid(number):
        raise CommandError(f"--agent {text!r}: {number!r} is not a valid ABN")
    kind = kind.upper() or "TAX"
    if kind not in register.AGENT_KINDS:
        raise CommandError(f"--agent {text!r}: KIND must be one of {', '.join(register.AGENT_KINDS)}")
    if not clients.isdigit():
        raise CommandError(f"--agent {text!r}: CLIENTS must be a whole number")
    name = parts[4].strip() if len(parts) == 5 and parts[4].strip() else f"Agent {tan}"
    return register.AgentSpec(
        tan=tan, abn=number, name=name, kind=kind, clients=int(clients), letters_per_client=letters_per_client
    )


class Command(BaseCommand):
    help = "Regenerate (or clear) the stand-in ATO's synthetic client register."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data-dir",
            default=str(Path(settings.BASE_DIR) / "var" / "ato_sandbox"),
            help="the stand-in ATO's data directory (its sandbox.sqlite3 is created if missing)",
        )
        parser.add_argument("--seed", type=int, default=1, help="the same seed and sizes give the same register")
        parser.add_argument("--taxpayers", type=int, default=3000)
        parser.add_argument(
            "--agent",
            action="append",
            default=[],
            metavar="TAN:ABN:KIND:CLIENTS[:NAME]",
            help="an agent the register must contain with that many current clients (repeatable; KIND TAX, BAS "
            "or PAY); the register grows when the agents need more taxpayers",
        )
        parser.add_argument("--letters-per-client", type=float, default=4.0, help="for the --agent practices")
        parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
        parser.add_argument("--reset-only", action="store_true", help="clear the register and generate nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["taxpayers"] < 0:
            raise CommandError("--taxpayers must not be negative")
        if options["letters_per_client"] < 0:
            raise CommandError("--letters-per-client must not be negative")
        agents = [parse_agent(text, options["letters_per_client"]) for text in options["agent"]]
        data_dir = Path(options["data_dir"]).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        storage = Storage(data_dir / "sandbox.sqlite3")
        storage.initialise()
        started = time.monotonic()
        try:
            with storage.write() as db:
                register.create_schema(db)
                if options["reset_only"]:
                    register.clear(db)
                    counts = dict.fromkeys(register.TABLES, 0)
                else:
                    counts = register.generate(
                        db, seed=options["seed"], taxpayers=options["taxpayers"], agents=agents, today=options["today"]
                    )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        for table in register.TABLES:
            self.stdout.write(f"{table:<22} {counts[table]:>10,}")
        action = "Cleared" if options["reset_only"] else "Generated"
        self.stdout.write(f"{action} the register in {storage.path} in {elapsed:.1f} s")
