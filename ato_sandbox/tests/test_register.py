"""The synthetic register: its validity helpers, the generator's determinism and invariants, and the queries the
services share. Pure tests over in-memory SQLite (no sandbox process), small enough to run in a few seconds."""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from datetime import date

import pytest
from stdnum.au import abn as stdnum_abn
from stdnum.au import tfn as stdnum_tfn

from ato_sandbox import register
from ato_sandbox.register import AgentSpec

TODAY = date(2026, 11, 30)
PRACTICE = AgentSpec(tan="71234567", abn="53004085616", name="Demo Practice", kind="TAX", clients=150)
BOOKKEEPER = AgentSpec(
    tan="81234567", abn="51824753556", name="Demo Bookkeeping", kind="BAS", clients=60, letters_per_client=2.0
)


def _database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    register.create_schema(db)
    return db


def _generate(
    seed: int = 7, taxpayers: int = 400, agents: tuple[AgentSpec, ...] = (PRACTICE, BOOKKEEPER)
) -> tuple[sqlite3.Connection, dict[str, int]]:
    db = _database()
    counts = register.generate(db, seed=seed, taxpayers=taxpayers, agents=agents, today=TODAY)
    return db, counts


def _count(db: sqlite3.Connection, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0])


def _dump(db: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in register.TABLES}  # noqa: S608


@pytest.fixture(scope="module")
def reg() -> Iterator[sqlite3.Connection]:
    db, _ = _generate()
    yield db
    db.close()


def _agent_id(db: sqlite3.Connection, tan: str) -> int:
    agent = register.agent_by_tan(db, tan)
    assert agent is not None
    return int(agent["id"])


# --- validity helpers ---


@pytest.mark.parametrize(
    ("state", "postcode"),
    [("NSW", "2000"), ("NSW", "1000"), ("NSW", "2619"), ("NSW", "2999"), ("ACT", "2600"), ("ACT", "0200"),
     ("ACT", "2912"), ("VIC", "3000"), ("VIC", "8001"), ("QLD", "4000"), ("QLD", "9726"), ("SA", "5000"),
     ("WA", "6000"), ("TAS", "7000"), ("NT", "0800"), ("NT", "0999")],
)  # fmt: skip
def test_valid_postcodes(state: str, postcode: str) -> None:
    assert register.valid_postcode(state, postcode)


@pytest.mark.parametrize(
    ("state", "postcode"),
    [("NSW", "2600"), ("NSW", "2910"), ("ACT", "2000"), ("ACT", "2619"), ("VIC", "4000"), ("NT", "0200"),
     ("NT", "800"), ("QLD", "40000"), ("SA", "50a0"), ("WA", "٦٠٠٠"), ("XYZ", "2000"), ("nsw", "2000"),
     ("TAS", "")],
)  # fmt: skip
def test_invalid_postcodes(state: str, postcode: str) -> None:
    assert not register.valid_postcode(state, postcode)


@pytest.mark.parametrize("bsb", ["062-000", "062000", "013-456", "733-001", "084-004", "484-799", "633-000", "112-879"])
def test_valid_bsbs(bsb: str) -> None:
    assert register.valid_bsb(bsb)


@pytest.mark.parametrize(
    "bsb",
    ["000-000", "002-000", "992-000", "061-000", "068-000", "062 000", "06-2000", "06200", "0620000", "", "abc-def"],
)
def test_invalid_bsbs(bsb: str) -> None:
    assert not register.valid_bsb(bsb)


def test_made_identifiers_are_valid() -> None:
    rng = random.Random(3)
    tfns = [register.make_tfn(rng) for _ in range(500)]
    abns = [register.make_abn(rng) for _ in range(500)]
    assert all(len(t) == 9 and stdnum_tfn.is_valid(t) for t in tfns)
    assert all(len(a) == 11 and stdnum_abn.is_valid(a) for a in abns)
    assert len(set(tfns)) > 490 and len(set(abns)) > 490  # random, not a handful of values


# --- the generator ---


def test_same_seed_same_register_and_another_seed_differs() -> None:
    first, counts = _generate(seed=11)
    second, again = _generate(seed=11)
    other, _ = _generate(seed=12)
    assert counts == again
    assert _dump(first) == _dump(second)
    assert _dump(first)["reg_taxpayers"] != _dump(other)["reg_taxpayers"]


def test_counts_match_the_tables_and_meta(reg: sqlite3.Connection) -> None:
    summary = register.summary(reg)
    assert summary["counts"]["reg_taxpayers"] == 400
    assert all(summary["counts"][table] > 0 for table in register.TABLES)
    assert summary["meta"] == {"seed": "7", "taxpayers": "400", "generated_at": "2026-11-30"}
    # Two given agents (first, in order) and max(3, 400 // 1000) others.
    assert [a["tan"] for a in summary["agents"][:2]] == [PRACTICE.tan, BOOKKEEPER.tan]
    assert len(summary["agents"]) == 5


def test_generation_keeps_the_schema(reg: sqlite3.Connection) -> None:
    indexes = {row[0] for row in reg.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert set(register._INDEX_NAMES) <= indexes
    assert len(register._INDEX_NAMES) == register.SCHEMA.count("CREATE INDEX")


def test_identifiers_are_valid_and_unique(reg: sqlite3.Connection) -> None:
    tfns = [row[0] for row in reg.execute("SELECT tfn FROM reg_taxpayers")]
    assert all(stdnum_tfn.is_valid(t) and len(t) == 9 for t in tfns)
    abns = [row[0] for row in reg.execute("SELECT abn FROM reg_taxpayers WHERE abn IS NOT NULL")]
    abns += [row[0] for row in reg.execute("SELECT abn FROM reg_agents")]
    assert all(stdnum_abn.is_valid(a) for a in abns)
    assert len(abns) == len(set(abns))
    for number, usi, entity in reg.execute(
        "SELECT f.abn, f.usi, t.entity FROM reg_funds f JOIN reg_taxpayers t ON t.id = f.taxpayer_id"
    ):
        assert usi == number + "001" and entity in ("SMF", "COY")
    tans = [row[0] for row in reg.execute("SELECT tan FROM reg_agents WHERE id > 2")]
    assert all(len(t) == 8 and t.isdigit() for t in tans)


def test_taxpayer_content_is_plausible(reg: sqlite3.Connection) -> None:
    entities = dict(reg.execute("SELECT entity, count(*) FROM reg_taxpayers GROUP BY entity").fetchall())
    assert 0.6 < entities["IND"] / 400 < 0.8
    assert reg.execute(
        "SELECT count(*) FROM reg_taxpayers WHERE entity = 'IND' AND (family_name IS NULL OR given_name IS NULL "
        "OR birth_date NOT BETWEEN '1940-01-01' AND '2005-12-31' OR organisation_name IS NOT NULL)"
    ).fetchone() == (0,)
    assert reg.execute(
        "SELECT count(*) FROM reg_taxpayers WHERE entity <> 'IND' AND (organisation_name IS NULL "
        "OR family_name IS NOT NULL OR (entity IN ('TRT', 'SMF', 'PTR') AND legal_name IS NULL))"
    ).fetchone() == (0,)
    assert _count(reg, "SELECT count(*) FROM reg_taxpayers WHERE entity = 'SMF' AND super_regulated = 0") == 0
    assert reg.execute("SELECT count(*) FROM reg_taxpayers WHERE death_date < birth_date").fetchone() == (0,)
    # Every taxpayer has an income tax account; exactly the ABN holders have activity statement accounts.
    assert reg.execute(
        "SELECT count(*) FROM reg_taxpayers t WHERE NOT EXISTS "
        "(SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id AND a.kind = 'ITX')"
    ).fetchone() == (0,)
    assert reg.execute(
        "SELECT count(*) FROM reg_taxpayers t WHERE (t.abn IS NOT NULL) <> EXISTS "
        "(SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id AND a.kind = 'AS' AND a.branch = '001')"
    ).fetchone() == (0,)
    assert reg.execute(
        "SELECT count(*) FROM reg_accounts a WHERE a.kind = 'AS' AND NOT EXISTS "
        "(SELECT 1 FROM reg_roles r WHERE r.account_id = a.id)"
    ).fetchone() == (0,)
    roles = {row[0] for row in reg.execute("SELECT DISTINCT role FROM reg_roles")}
    assert roles <= set(register.AS_ROLES) and {"GST", "PAYGW", "PAYGI"} <= roles


def test_every_address_is_in_its_state_and_every_bsb_valid(reg: sqlite3.Connection) -> None:
    addresses = reg.execute(
        "SELECT state, postcode, country FROM reg_addresses WHERE usage IN ('RES', 'POS', 'BUS')"
    ).fetchall()
    assert addresses
    assert all(register.valid_postcode(state, postcode) and country == "au" for state, postcode, country in addresses)
    bsbs = [row[0] for row in reg.execute("SELECT bsb FROM reg_bank_accounts")]
    assert bsbs and all(len(b) == 6 and register.valid_bsb(b) for b in bsbs)
    # Each taxpayer has a current main and postal address.
    assert reg.execute(
        "SELECT count(*) FROM reg_taxpayers t WHERE (SELECT count(*) FROM reg_addresses a WHERE a.taxpayer_id = t.id "
        "AND a.account_id IS NULL AND a.end_date IS NULL AND a.usage IN ('RES', 'BUS', 'POS')) <> 2"
    ).fetchone() == (0,)


def _assert_chained(periods: dict[object, list[tuple[str, str | None]]]) -> None:
    """Per key: dated, at most one open period, and each period starts no earlier than the previous one ended."""
    assert periods
    for key, rows in periods.items():
        rows.sort(key=lambda period: (period[0], period[1] or "9999"))
        assert sum(end is None for _, end in rows) <= 1, key
        for (start, end), (next_start, _) in itertools.pairwise(rows):
            assert end is not None and start <= end <= next_start, (key, rows)
        assert all(end is None or start < end for start, end in rows), (key, rows)


def test_histories_are_dated_and_do_not_overlap(reg: sqlite3.Connection) -> None:
    for query in (
        "SELECT taxpayer_id, account_id, usage, start_date, end_date FROM reg_addresses",
        "SELECT taxpayer_id, account_id, 'bank', start_date, end_date FROM reg_bank_accounts",
        "SELECT taxpayer_id, level, coalesce(account_id, 0) || '/' || coalesce(role, ''), start_date, end_date "
        "FROM reg_links",
        "SELECT taxpayer_id, relationship, 'PUB', start_date, end_date FROM reg_associates WHERE relationship = 'PUB'",
        "SELECT taxpayer_id, fund_id, member_number, open_date, closed_date FROM reg_members",
    ):
        periods: dict[object, list[tuple[str, str | None]]] = defaultdict(list)
        for a, b, c, start, end in reg.execute(query):
            assert start is not None and start <= TODAY.isoformat()
            periods[(a, b, c)].append((start, end))
        _assert_chained(periods)
    # Some history exists at all.
    for table in ("reg_addresses", "reg_bank_accounts", "reg_links"):
        assert reg.execute(f"SELECT count(*) FROM {table} WHERE end_date IS NOT NULL").fetchone()[0] > 0  # noqa: S608
    assert _count(reg, "SELECT count(*) FROM reg_links WHERE end_date IS NOT NULL AND ended_reason IS NULL") == 0


def test_link_invariants(reg: sqlite3.Connection) -> None:
    assert reg.execute(
        "SELECT count(*) FROM (SELECT 1 FROM reg_links WHERE end_date IS NULL "
        "GROUP BY taxpayer_id, level, coalesce(account_id, 0), coalesce(role, '') HAVING count(*) > 1)"
    ).fetchone() == (0,)
    # BAS agents only on activity statement accounts or their roles.
    assert reg.execute(
        "SELECT count(*) FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id LEFT JOIN reg_accounts a "
        "ON a.id = l.account_id WHERE g.kind = 'BAS' AND (l.level = 'CLIENT' OR a.kind IS NOT 'AS')"
    ).fetchone() == (0,)
    # Levels carry exactly what they need; accounts belong to the linked taxpayer; roles exist on the account.
    assert reg.execute(
        "SELECT count(*) FROM reg_links l LEFT JOIN reg_accounts a ON a.id = l.account_id WHERE "
        "(l.level = 'CLIENT' AND (l.account_id IS NOT NULL OR l.role IS NOT NULL)) OR "
        "(l.level = 'ACCOUNT' AND (a.taxpayer_id IS NOT l.taxpayer_id OR l.role IS NOT NULL)) OR "
        "(l.level = 'ROLE' AND (a.taxpayer_id IS NOT l.taxpayer_id OR NOT EXISTS "
        "(SELECT 1 FROM reg_roles r WHERE r.account_id = l.account_id AND r.role = l.role)))"
    ).fetchone() == (0,)
    levels = {row[0] for row in reg.execute("SELECT DISTINCT level FROM reg_links WHERE agent_id = 1")}
    assert levels == {"CLIENT", "ACCOUNT", "ROLE"}


def test_given_agents_have_exactly_their_clients(reg: sqlite3.Connection) -> None:
    practice, bookkeeper = _agent_id(reg, PRACTICE.tan), _agent_id(reg, BOOKKEEPER.tan)
    assert register.client_count(reg, practice) == PRACTICE.clients
    assert register.client_count(reg, bookkeeper) == BOOKKEEPER.clients
    # Former clients appear only as history.
    assert (
        reg.execute(
            "SELECT count(*) FROM reg_links WHERE agent_id = ? AND end_date IS NOT NULL AND taxpayer_id NOT IN "
            "(SELECT taxpayer_id FROM reg_links WHERE agent_id = ? AND end_date IS NULL)",
            (practice, practice),
        ).fetchone()[0]
        > 0
    )
    # Another practice holds a role on some of the given agents' clients (so taking it over can be exercised).
    shared = reg.execute(
        "SELECT count(*) FROM reg_links o JOIN reg_links g ON g.taxpayer_id = o.taxpayer_id AND g.end_date IS NULL "
        "WHERE o.end_date IS NULL AND o.level = 'ROLE' AND o.agent_id > 2 AND g.agent_id IN (?, ?)",
        (practice, bookkeeper),
    ).fetchone()[0]
    assert shared > 0
    # Letters: about letters_per_client each.
    for agent, spec in ((practice, PRACTICE), (bookkeeper, BOOKKEEPER)):
        letters = reg.execute(
            "SELECT count(*) FROM reg_communications WHERE taxpayer_id IN "
            "(SELECT taxpayer_id FROM reg_links WHERE agent_id = ? AND end_date IS NULL)",
            (agent,),
        ).fetchone()[0]
        expected = spec.clients * spec.letters_per_client
        assert 0.75 * expected < letters < 1.25 * expected
    # A practice default for each, and some per-client overrides.
    for agent in (practice, bookkeeper):
        rows = reg.execute(
            "SELECT taxpayer_id, channel FROM reg_preferences WHERE agent_id = ? ORDER BY taxpayer_id", (agent,)
        ).fetchall()
        assert rows[0] == (None, "ELEC") and len(rows) > 1


def test_communications_look_like_letters(reg: sqlite3.Connection) -> None:
    kinds = {row[0] for row in reg.execute("SELECT DISTINCT kind FROM reg_communications")}
    assert kinds == set(register.COMMUNICATION_KINDS)
    low = date(TODAY.year - 3, TODAY.month, TODAY.day).isoformat()
    assert reg.execute(
        "SELECT count(*) FROM reg_communications WHERE issued_date NOT BETWEEN ? AND ?", (low, TODAY.isoformat())
    ).fetchone() == (0,)
    titles = [row[0] for row in reg.execute("SELECT title FROM reg_communications WHERE kind = 'NOA' LIMIT 5")]
    assert all(t.startswith(("Notice of assessment 20", "Notice of amended assessment 20")) for t in titles)
    assert reg.execute(
        "SELECT count(*) FROM reg_communications c JOIN reg_accounts a ON a.id = c.account_id "
        "WHERE c.kind = 'ASR' AND (a.kind <> 'AS' OR c.title NOT LIKE 'Activity statement %quarter')"
    ).fetchone() == (0,)


def test_associates_and_members(reg: sqlite3.Connection) -> None:
    relationships = {row[0] for row in reg.execute("SELECT DISTINCT relationship FROM reg_associates")}
    assert {"DIR", "PUB", "TEE", "PTR"} <= relationships
    # Associates in the register are living individuals, named as the register names them.
    assert reg.execute(
        "SELECT count(*) FROM reg_associates s JOIN reg_taxpayers t ON t.id = s.associate_id "
        "WHERE t.entity <> 'IND' OR s.name <> t.given_name || ' ' || t.family_name"
    ).fetchone() == (0,)
    assert reg.execute("SELECT count(*) FROM reg_associates WHERE associate_id IS NOT NULL").fetchone()[0] > 0
    members = reg.execute("SELECT count(DISTINCT taxpayer_id) FROM reg_members").fetchone()[0]
    individuals = reg.execute("SELECT count(*) FROM reg_taxpayers WHERE entity = 'IND'").fetchone()[0]
    assert 0.15 < members / individuals < 0.45


def test_the_register_grows_for_its_agents() -> None:
    db, counts = _generate(taxpayers=50, agents=(AgentSpec("91234567", "53004085616", "Big", clients=120),))
    assert counts["reg_taxpayers"] == 120
    assert register.client_count(db, _agent_id(db, "91234567")) == 120


def test_generate_joins_the_callers_transaction_and_rejects_bad_agents() -> None:
    db = _database()
    db.execute("BEGIN")
    register.generate(db, taxpayers=20, today=TODAY)
    assert db.in_transaction  # not committed on the caller's behalf
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM reg_taxpayers").fetchone() == (0,)
    with pytest.raises(ValueError, match="kind"):
        register.generate(db, agents=[AgentSpec("1", "53004085616", "X", kind="LAW")])
    with pytest.raises(ValueError, match="distinct"):
        register.generate(db, agents=[PRACTICE, PRACTICE])
    assert not db.in_transaction


def test_generate_from_json() -> None:
    db = _database()
    result = register.generate_from_json(
        db,
        {
            "seed": 2,
            "taxpayers": 30,
            "today": "2026-11-30",
            "agents": [{"tan": "1", "abn": PRACTICE.abn, "clients": 5}],
        },
    )
    assert result["counts"]["reg_taxpayers"] == 30
    assert register.client_count(db, _agent_id(db, "1")) == 5
    # The sandbox's business date stands in for the clock unless the body names a day.
    register.generate_from_json(db, {"taxpayers": 10}, today=date(2025, 1, 1))
    assert register.summary(db)["meta"]["generated_at"] == "2025-01-01"
    bad_bodies: list[object] = [
        [],
        {"taxpayers": -1},
        {"taxpayers": "many"},
        {"colour": "red"},
        {"agents": [{"tan": "1"}]},
        {"agents": [{"tan": "1", "abn": "12345678901"}]},
        {"agents": [{"tan": "1", "abn": "53004085616", "kind": "LAW"}]},
        {"today": "yesterday"},
        {"today": 20261130},
    ]
    for bad in bad_bodies:
        with pytest.raises(ValueError):
            register.generate_from_json(db, bad)


# --- queries ---


@pytest.fixture
def tiny() -> sqlite3.Connection:
    """Two agents and one taxpayer with two activity statement accounts, links at each level."""
    db = _database()
    db.executescript(
        """
        INSERT INTO reg_taxpayers (id, tfn, abn, wpn, entity, organisation_name) VALUES
            (1, '123456782', '51824753556', NULL, 'COY', 'Tiny Pty Ltd'),
            (2, '876543210', NULL, '53004085616', 'IND', NULL);
        INSERT INTO reg_accounts (id, taxpayer_id, kind, branch, start_date) VALUES
            (10, 1, 'ITX', NULL, '2020-01-01'), (11, 1, 'AS', '001', '2020-01-01'), (12, 1, 'AS', '002', '2020-01-01');
        INSERT INTO reg_roles (account_id, role) VALUES (11, 'GST'), (11, 'PAYGW'), (12, 'GST');
        INSERT INTO reg_agents (id, tan, abn, name, kind) VALUES (1, 'A1', '51824753556', 'One', 'TAX'),
            (2, 'A2', '53004085616', 'Two', 'BAS'), (3, 'A3', '53004085616', 'Three', 'TAX');
        INSERT INTO reg_links (agent_id, taxpayer_id, level, account_id, role, start_date, end_date) VALUES
            (1, 1, 'ACCOUNT', 11, NULL, '2021-01-01', NULL),
            (2, 1, 'ROLE', 12, 'GST', '2021-01-01', NULL),
            (3, 1, 'CLIENT', NULL, NULL, '2019-01-01', '2021-01-01');
        """
    )
    return db


def test_has_access_by_level(tiny: sqlite3.Connection) -> None:
    # Account level: the account and its roles, not the client nor another account.
    assert register.has_access(tiny, 1, 1, account_id=11)
    assert register.has_access(tiny, 1, 1, account_id=11, role="PAYGW")
    assert register.has_access(tiny, 1, 1, role="PAYGW")  # on some account it covers
    assert not register.has_access(tiny, 1, 1)
    assert not register.has_access(tiny, 1, 1, account_id=12)
    assert not register.has_access(tiny, 1, 1, account_id=10)
    # Role level: that role on that account only.
    assert register.has_access(tiny, 2, 1, account_id=12, role="GST")
    assert register.has_access(tiny, 2, 1, role="GST")
    assert not register.has_access(tiny, 2, 1, account_id=12)
    assert not register.has_access(tiny, 2, 1, account_id=11, role="GST")
    assert not register.has_access(tiny, 2, 1)
    # An ended client-level link covers nothing; a current one covers everything.
    assert not register.has_access(tiny, 3, 1, account_id=11, role="GST")
    tiny.execute(
        "INSERT INTO reg_links (agent_id, taxpayer_id, level, start_date) VALUES (3, 1, 'CLIENT', '2022-01-01')"
    )
    assert register.has_access(tiny, 3, 1)
    assert register.has_access(tiny, 3, 1, account_id=12, role="GST")
    assert [link["level"] for link in register.current_links(tiny, 3, 1)] == ["CLIENT"]


def test_finders(tiny: sqlite3.Connection) -> None:
    found = register.find_taxpayer(tiny, tfn="123 456 782")
    assert found is not None and found["organisation_name"] == "Tiny Pty Ltd"
    assert register.find_taxpayer(tiny, abn="51824753556", tfn="123456782") == found
    assert register.find_taxpayer(tiny, abn="51824753556", tfn="876543210") is None
    wpn = register.find_taxpayer(tiny, wpn="53004085616")
    assert wpn is not None and wpn["id"] == 2
    assert register.find_taxpayer(tiny, tfn="999999999") is None
    with pytest.raises(ValueError):
        register.find_taxpayer(tiny)
    agent = register.agent_by_tan(tiny, "A2")
    assert agent == {"id": 2, "tan": "A2", "abn": "53004085616", "name": "Two", "kind": "BAS"}
    assert register.agent_by_tan(tiny, "nope") is None
    tiny.row_factory = sqlite3.Row  # the helpers answer plain dicts whatever the connection's row factory
    assert register.current_links(tiny, 1, 1)[0]["account_id"] == 11


def test_a_new_register_forgets_what_maas_reported_and_who_administers_funds() -> None:
    """The accounts MAAS reported and the funds' administrators belong to the register they were reported to:
    generating another leaves none behind (they would point at funds that no longer exist)."""
    db, _ = _generate(taxpayers=50, agents=())
    fund_id = db.execute(
        "INSERT INTO reg_funds (abn, usi, name) VALUES ('11000000001', '11000000001001', 'F')"
    ).lastrowid
    db.execute("INSERT INTO reg_fund_administrators (fund_id, abn) VALUES (?, '53004085616')", (fund_id,))
    db.execute(
        "INSERT INTO reg_member_reports (fund_id, member_number, status, event_kind, event_date, processed_order, "
        "tfn_validation) VALUES (?, 'M-1', 'OPEN', 'OPENED', '2026-11-02', 1, 'MATCHED')",
        (fund_id,),
    )
    register.generate(db, seed=8, taxpayers=50, today=TODAY)
    assert [_count(db, f"SELECT count(*) FROM {table}") for table in register.REPORTED_TABLES] == [0, 0]  # noqa: S608
