"""Deterministic, valid-looking identifiers and people for demo data, tests and benchmarks. Never real people."""

from __future__ import annotations

import random
from datetime import date, timedelta

from stdnum.au import abn as abn_check
from stdnum.au import tfn as tfn_check

FAMILY = [
    "Nguyen",
    "Smith",
    "Williams",
    "Brown",
    "Wilson",
    "Taylor",
    "Jones",
    "Singh",
    "Chen",
    "Kelly",
    "Murphy",
    "Patel",
    "Walker",
    "White",
    "Harris",
    "Martin",
    "Lee",
    "Thompson",
    "Ryan",
    "Campbell",
    "O'Brien",
    "Papadopoulos",
]
GIVEN = [
    "Olivia",
    "Jack",
    "Charlotte",
    "William",
    "Mia",
    "Noah",
    "Amelia",
    "Oliver",
    "Isla",
    "Lachlan",
    "Ava",
    "Thomas",
    "Grace",
    "Henry",
    "Zoe",
    "Liam",
    "Chloe",
    "Ethan",
    "Ruby",
    "James",
    "Priya",
    "Wei",
]
ORG_WORDS = [
    "Harbour",
    "Southern",
    "Eucalypt",
    "Coastal",
    "Outback",
    "Granite",
    "Banksia",
    "Riverina",
    "Summit",
    "Wattle",
]
ORG_KINDS = [
    ("company", "Pty Ltd"),
    ("trust", "Family Trust"),
    ("partnership", "Partners"),
    ("super_fund", "Super Fund"),
]


def make_tfn(rng: random.Random) -> str:
    weights = (1, 4, 3, 7, 5, 8, 6, 9)
    while True:
        digits = [rng.randint(0, 9) for _ in range(8)]
        digits[0] = rng.randint(1, 9)
        check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if check < 10:  # weight 10 on the last digit: it must equal the partial sum mod 11
            tfn = "".join(map(str, digits)) + str(check)
            assert tfn_check.is_valid(tfn)
            return tfn


def make_abn(rng: random.Random) -> str:
    while True:
        tail = "".join(str(rng.randint(0, 9)) for _ in range(9))
        for head in range(10, 100):
            candidate = f"{head}{tail}"
            if abn_check.is_valid(candidate):
                return candidate


def make_client_rows(count: int, seed: int = 1) -> list[dict[str, str]]:
    """Rows in the CSV import's column names, with unique TFNs and ABNs."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    tfns: set[str] = set()
    abns: set[str] = set()
    while len(rows) < count:
        tfn, abn = make_tfn(rng), make_abn(rng)
        if tfn in tfns or abn in abns:
            continue
        tfns.add(tfn)
        abns.add(abn)
        if rng.random() < 0.7:
            born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))
            rows.append(
                {
                    "kind": "individual",
                    "family_name": rng.choice(FAMILY),
                    "given_names": rng.choice(GIVEN),
                    "organisation_name": "",
                    "date_of_birth": born.isoformat(),
                    "tfn": tfn,
                    "abn": abn,
                    "wpn": "",
                    "group": "",
                }
            )
        else:
            kind, suffix = rng.choice(ORG_KINDS)
            name = f"{rng.choice(ORG_WORDS)} {rng.choice(FAMILY)} {suffix}"
            rows.append(
                {
                    "kind": kind,
                    "family_name": "",
                    "given_names": "",
                    "organisation_name": name,
                    "date_of_birth": "",
                    "tfn": tfn,
                    "abn": abn,
                    "wpn": "",
                    "group": "",
                }
            )
    return rows


def rows_to_csv(rows: list[dict[str, str]]) -> str:
    import csv
    import io

    from clients.csv_io import COLUMNS

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
