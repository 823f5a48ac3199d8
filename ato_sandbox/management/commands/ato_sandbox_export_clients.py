"""``manage.py ato_sandbox_export_clients --data-dir D --tan TAN [--unlinked N] --out FILE``: write an agent's
current clients at the stand-in ATO (and N taxpayers it is not linked to) as a CSV in the portal's client-import
columns, so a demo practice's register starts out matching what the ATO holds, with a few people it can still
search for and link.

Demo and development only: it writes full TFNs to a file, as any client import file does."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from ato_sandbox.storage import Storage

COLUMNS = ("kind", "family_name", "given_names", "organisation_name", "date_of_birth", "tfn", "abn", "wpn", "group")
KINDS = {"IND": "individual", "COY": "company", "TRT": "trust", "PTR": "partnership", "SMF": "super_fund"}
SELECT = (
    "SELECT t.entity, t.family_name, t.given_name, t.organisation_name, t.birth_date, t.tfn, t.abn, t.wpn "
    "FROM reg_taxpayers t WHERE t.death_date IS NULL AND {test} EXISTS (SELECT 1 FROM reg_links l "
    "JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.end_date IS NULL) "
    "ORDER BY t.id LIMIT ?"
)


class Command(BaseCommand):
    help = "Write an agent's clients at the stand-in ATO as a client-import CSV (demo data)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data-dir", default=str(Path(settings.BASE_DIR) / "var" / "ato_sandbox"))
        parser.add_argument("--tan", required=True)
        parser.add_argument("--unlinked", type=int, default=0, help="also this many taxpayers not linked to it")
        parser.add_argument("--out", required=True)

    def handle(self, *args: Any, data_dir: str, tan: str, unlinked: int, out: str, **options: Any) -> None:
        storage = Storage(Path(data_dir) / "sandbox.sqlite3")
        storage.initialise()
        db = storage.connection()
        linked = db.execute(SELECT.format(test=""), (tan, 1_000_000)).fetchall()
        others = db.execute(SELECT.format(test="NOT"), (tan, unlinked)).fetchall() if unlinked else []
        with open(out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for entity, family, given, organisation, born, tfn, abn, wpn in [*linked, *others]:
                individual = entity == "IND"
                writer.writerow(
                    [
                        KINDS.get(entity, "other"),
                        family or "" if individual else "",
                        given or "" if individual else "",
                        "" if individual else organisation or "",
                        born or "" if individual else "",
                        tfn,
                        abn or "",
                        wpn or "",
                        "",
                    ]
                )
        self.stdout.write(f"{len(linked)} clients of {tan} and {len(others)} others written to {out}")
