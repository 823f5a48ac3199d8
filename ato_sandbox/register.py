"""The stand-in ATO's synthetic client register: its tables, and a deterministic generator.

Everything lives in the sandbox's one SQLite file (``sandbox.sqlite3``), beside the message log, so applying a
business message and remembering its MessageId commit together. Identifiers are valid (TFN and ABN check digits,
BSBs whose third digit is the state, postcodes in their state's range); names, dates and histories come from a
seeded ``random.Random``, so the same seed and size give the same register on every machine.

Dates are ISO strings (``YYYY-MM-DD``); an open-ended period has ``end_date`` NULL. Codes are the documents' codes
(see ``ato_gateway/wire/documents``), so services copy them through without translation.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from stdnum.au import abn as stdnum_abn

SCHEMA = """
CREATE TABLE IF NOT EXISTS reg_taxpayers (
    id INTEGER PRIMARY KEY,
    tfn TEXT NOT NULL UNIQUE,
    abn TEXT UNIQUE,                       -- NULL for most individuals
    wpn TEXT UNIQUE,                       -- withholding payer number, rare
    entity TEXT NOT NULL,                  -- IND, COY, TRT, PTR, SMF (super fund), OTH
    family_name TEXT,                      -- individuals
    given_name TEXT,
    other_given_name TEXT,
    organisation_name TEXT,                -- non-individuals
    legal_name TEXT,                       -- trusts, funds and partnerships: the legal name of the entity
    birth_date TEXT,                       -- individuals
    death_date TEXT,
    not_for_profit INTEGER NOT NULL DEFAULT 0,
    super_regulated INTEGER NOT NULL DEFAULT 0,   -- superannuation indicator: APRA or ATO regulated fund
    quoted_tfn_for_super INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS reg_taxpayers_family ON reg_taxpayers (family_name);
CREATE INDEX IF NOT EXISTS reg_taxpayers_birth ON reg_taxpayers (birth_date);   -- MAAS matches members by it

CREATE TABLE IF NOT EXISTS reg_accounts (
    id INTEGER PRIMARY KEY,
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    kind TEXT NOT NULL,                    -- ITX (income tax), AS (activity statement), FBT
    branch TEXT,                           -- AS accounts: the 3-digit branch, with the taxpayer's ABN
    start_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reg_accounts_taxpayer ON reg_accounts (taxpayer_id);

CREATE TABLE IF NOT EXISTS reg_roles (     -- the roles of an activity statement account
    account_id INTEGER NOT NULL REFERENCES reg_accounts (id),
    role TEXT NOT NULL,                    -- GST, PAYGW, PAYGI, FBTI, FTC, WET, LCT
    PRIMARY KEY (account_id, role)
);

CREATE TABLE IF NOT EXISTS reg_agents (
    id INTEGER PRIMARY KEY,
    tan TEXT NOT NULL UNIQUE,              -- registered agent number
    abn TEXT NOT NULL,                     -- the ABN whose machine credential signs for the agent
    name TEXT NOT NULL,
    kind TEXT NOT NULL                     -- TAX (tax agent), BAS (BAS agent), PAY (payroll provider)
);

CREATE TABLE IF NOT EXISTS reg_links (     -- client-agent relationships
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES reg_agents (id),
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    level TEXT NOT NULL,                   -- CLIENT, ACCOUNT, ROLE
    account_id INTEGER REFERENCES reg_accounts (id),   -- ACCOUNT and ROLE levels
    role TEXT,                             -- ROLE level
    start_date TEXT NOT NULL,
    end_date TEXT,                         -- NULL while current
    ended_reason TEXT                      -- REMOVED, SUPERSEDED (another agent took the role), CLIENT
);
CREATE INDEX IF NOT EXISTS reg_links_agent ON reg_links (agent_id, end_date, taxpayer_id);
CREATE INDEX IF NOT EXISTS reg_links_taxpayer ON reg_links (taxpayer_id, end_date);

CREATE TABLE IF NOT EXISTS reg_addresses (
    id INTEGER PRIMARY KEY,
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    account_id INTEGER REFERENCES reg_accounts (id),   -- NULL: client level
    usage TEXT NOT NULL,                   -- RES (residential/geographic), POS (postal), BUS (business), PHN
                                           -- (telephone), EML (electronic: email), WEB, CNT (authorised contact)
    line1 TEXT, line2 TEXT, locality TEXT, state TEXT, postcode TEXT, country TEXT,
    phone TEXT,                            -- PHN
    email TEXT,                            -- EML, WEB
    start_date TEXT NOT NULL,
    end_date TEXT
);
CREATE INDEX IF NOT EXISTS reg_addresses_taxpayer ON reg_addresses (taxpayer_id, account_id);

CREATE TABLE IF NOT EXISTS reg_bank_accounts (
    id INTEGER PRIMARY KEY,
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    account_id INTEGER REFERENCES reg_accounts (id),   -- NULL: client level (refunds)
    bsb TEXT NOT NULL,                     -- 6 digits, no dash
    number TEXT NOT NULL,
    account_name TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT
);
CREATE INDEX IF NOT EXISTS reg_bank_accounts_taxpayer ON reg_bank_accounts (taxpayer_id);

CREATE TABLE IF NOT EXISTS reg_contacts (  -- authorised contacts
    id INTEGER PRIMARY KEY,
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    account_id INTEGER REFERENCES reg_accounts (id),
    family_name TEXT NOT NULL,
    given_name TEXT NOT NULL,
    position TEXT,
    phone TEXT,
    email TEXT,
    start_date TEXT NOT NULL,
    end_date TEXT
);
CREATE INDEX IF NOT EXISTS reg_contacts_taxpayer ON reg_contacts (taxpayer_id);

CREATE TABLE IF NOT EXISTS reg_associates (
    id INTEGER PRIMARY KEY,
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    associate_id INTEGER REFERENCES reg_taxpayers (id),   -- when the associate is itself in the register
    relationship TEXT NOT NULL,            -- DIR (director), PUB (public officer), TEE (trustee), PTR (partner),
                                           -- BEN (beneficiary), SEC (secretary)
    name TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT
);
CREATE INDEX IF NOT EXISTS reg_associates_taxpayer ON reg_associates (taxpayer_id);

CREATE TABLE IF NOT EXISTS reg_communications (
    id INTEGER PRIMARY KEY,
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    account_id INTEGER REFERENCES reg_accounts (id),
    kind TEXT NOT NULL,                    -- NOA (notice of assessment), ASR (activity statement reminder),
                                           -- DEBT (debt letter), PPA (payment plan), AUD (audit), REV (review)
    title TEXT NOT NULL,
    issued_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reg_communications_taxpayer ON reg_communications (taxpayer_id, issued_date);
-- The agent-wide letters list walks letters in (issued date, id) order from its continuation, checking access as
-- it goes. Without this index every page sorted all of the agent's letters (measured 336-843 ms a page at 200k).
CREATE INDEX IF NOT EXISTS reg_communications_issued ON reg_communications (issued_date, id);

CREATE TABLE IF NOT EXISTS reg_preferences (   -- communication preferences
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES reg_agents (id),
    taxpayer_id INTEGER REFERENCES reg_taxpayers (id),   -- NULL: the practice default
    channel TEXT NOT NULL,                 -- ELEC (to the agent's online inbox), POST (paper to the client),
                                           -- EMAIL (to the client's email)
    email TEXT,
    updated_date TEXT NOT NULL,
    UNIQUE (agent_id, taxpayer_id)
);
-- A preference for one category of letters (COMMPREF's codes: ITX, AS, SUP, DEBT, FBT, EXC, GEN), over the
-- preference above for that category (taxpayer_id NULL: the practice default's).
CREATE TABLE IF NOT EXISTS reg_category_preferences (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES reg_agents (id),
    taxpayer_id INTEGER REFERENCES reg_taxpayers (id),
    category TEXT NOT NULL,
    channel TEXT NOT NULL,
    email TEXT,
    updated_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reg_category_preferences_client ON reg_category_preferences (agent_id, taxpayer_id);

CREATE TABLE IF NOT EXISTS reg_funds (
    id INTEGER PRIMARY KEY,
    abn TEXT NOT NULL UNIQUE,
    usi TEXT NOT NULL UNIQUE,              -- unique superannuation identifier: ABN + 3 digits
    name TEXT NOT NULL,
    taxpayer_id INTEGER REFERENCES reg_taxpayers (id)
);

CREATE TABLE IF NOT EXISTS reg_members (   -- member accounts of super funds
    id INTEGER PRIMARY KEY,
    fund_id INTEGER NOT NULL REFERENCES reg_funds (id),
    member_number TEXT NOT NULL,
    taxpayer_id INTEGER NOT NULL REFERENCES reg_taxpayers (id),
    open_date TEXT NOT NULL,
    closed_date TEXT,
    UNIQUE (fund_id, member_number)
);

-- A practice that administers funds reports for them with its own credential (MAAS): the fund's administrator.
CREATE TABLE IF NOT EXISTS reg_fund_administrators (
    fund_id INTEGER PRIMARY KEY REFERENCES reg_funds (id),
    abn TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reg_fund_administrators_abn ON reg_fund_administrators (abn);

-- Each fund account as MAAS last processed it, matched to a member or not (reg_members holds only the matched):
-- what Get answers, and the event date and order of the last transaction processed, against which an older one
-- is refused (CMN.ATO.SPRMBRINFO.099264).
CREATE TABLE IF NOT EXISTS reg_member_reports (
    id INTEGER PRIMARY KEY,
    fund_id INTEGER NOT NULL REFERENCES reg_funds (id),
    member_number TEXT NOT NULL,
    status TEXT NOT NULL,                  -- OPEN, CLOSED
    open_date TEXT,
    closed_date TEXT,
    event_kind TEXT NOT NULL,              -- of the last transaction processed: OPENED, CHANGED, CLOSED, REOPENED
    event_date TEXT NOT NULL,
    processed_order INTEGER NOT NULL,      -- increasing over every transaction processed, ties on the date
    tfn_validation TEXT NOT NULL,          -- MATCHED, CORRECTED, PROVIDED, UNMATCHED
    attributes TEXT,                       -- JSON of the last attributes reported, NULL when none were
    UNIQUE (fund_id, member_number)
);
-- Each Submit starts its order after the last one's: found by the index, not a scan of every account reported.
CREATE INDEX IF NOT EXISTS reg_member_reports_order ON reg_member_reports (processed_order);

CREATE TABLE IF NOT EXISTS reg_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

TABLES = (
    "reg_members",
    "reg_funds",
    "reg_preferences",
    "reg_communications",
    "reg_associates",
    "reg_contacts",
    "reg_bank_accounts",
    "reg_addresses",
    "reg_links",
    "reg_agents",
    "reg_roles",
    "reg_accounts",
    "reg_taxpayers",
    "reg_meta",
)

ENTITY_KINDS = ("IND", "COY", "TRT", "PTR", "SMF", "OTH")
ACCOUNT_KINDS = ("ITX", "AS", "FBT")
AS_ROLES = ("GST", "PAYGW", "PAYGI", "FBTI", "FTC", "WET", "LCT")
AGENT_KINDS = ("TAX", "BAS", "PAY")
LINK_LEVELS = ("CLIENT", "ACCOUNT", "ROLE")
ADDRESS_USAGES = ("RES", "POS", "BUS", "PHN", "EML", "WEB", "CNT")
STATES = ("NSW", "VIC", "QLD", "SA", "WA", "TAS", "NT", "ACT")
COMMUNICATION_KINDS = ("NOA", "ASR", "DEBT", "PPA", "AUD", "REV")


def create_schema(db: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


# What MAAS and the control endpoint add to a register: never generated, so not among the TABLES it counts.
REPORTED_TABLES = ("reg_member_reports", "reg_fund_administrators")
# What agents set through COMMPREF beyond the generated preferences: gone with the register it was set in.
SET_TABLES = ("reg_category_preferences",)


def clear(db: sqlite3.Connection) -> None:
    for table in (*SET_TABLES, *REPORTED_TABLES, *TABLES):
        db.execute(f"DELETE FROM {table}")  # noqa: S608 - table names are the constants above


# --- validity helpers --------------------------------------------------------------------------------------------

# Australia Post's state ranges (inclusive). NSW and the ACT interleave, so the ACT is not one contiguous block.
POSTCODE_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "NSW": ((1000, 2599), (2619, 2899), (2921, 2999)),
    "ACT": ((200, 299), (2600, 2618), (2900, 2920)),
    "VIC": ((3000, 3999), (8000, 8999)),
    "QLD": ((4000, 4999), (9000, 9999)),
    "SA": ((5000, 5999),),
    "WA": ((6000, 6999),),
    "TAS": ((7000, 7999),),
    "NT": ((800, 999),),
}

# The first two digits of a BSB name the bank; a small table of real prefixes is enough for the sandbox to reject
# made-up ones (00, 99, ...) the way the ATO's bank-detail checks do.
BANK_PREFIXES: dict[str, str] = {
    "01": "ANZ",
    "03": "Westpac",
    "73": "Westpac",
    "06": "Commonwealth Bank",
    "76": "Commonwealth Bank",
    "08": "National Australia Bank",
    "10": "BankSA",
    "11": "St.George Bank",
    "33": "St.George Bank",
    "12": "Bank of Queensland",
    "18": "Macquarie Bank",
    "30": "Bankwest",
    "48": "Suncorp Bank",
    "63": "Bendigo Bank",
}

# The third digit of a BSB is the state of the branch.
BSB_STATE_DIGIT: dict[str, str] = {
    "NSW": "2",
    "ACT": "2",
    "VIC": "3",
    "QLD": "4",
    "SA": "5",
    "NT": "5",
    "WA": "6",
    "TAS": "7",
}

_BSB = re.compile(r"[0-9]{3}-?[0-9]{3}")
_TFN_WEIGHTS = (1, 4, 3, 7, 5, 8, 6, 9, 10)


def valid_postcode(state: str, postcode: str) -> bool:
    """True when ``postcode`` is four digits inside one of ``state``'s ranges."""
    ranges = POSTCODE_RANGES.get(state)
    if ranges is None or not isinstance(postcode, str) or len(postcode) != 4:
        return False
    if not (postcode.isascii() and postcode.isdigit()):
        return False
    number = int(postcode)
    return any(low <= number <= high for low, high in ranges)


def valid_bsb(bsb: str) -> bool:
    """Six digits (``NNNNNN`` or ``NNN-NNN``), a known bank's prefix and a state digit as the third digit."""
    if not isinstance(bsb, str) or not _BSB.fullmatch(bsb):
        return False
    digits = bsb.replace("-", "")
    return digits[:2] in BANK_PREFIXES and digits[2] in "234567"


def make_tfn(rng: random.Random) -> str:
    """A valid 9-digit TFN (the 8-digit form's weights are disputed, so the sandbox never issues one)."""
    while True:
        body = str(rng.randrange(10_000_000, 100_000_000))
        partial = sum(weight * int(digit) for weight, digit in zip(_TFN_WEIGHTS, body, strict=False))
        # The check digit's weight is 10, which is -1 modulo 11: the digit must equal the partial sum modulo 11,
        # and no digit can when that is 10.
        check = partial % 11
        if check < 10:
            return body + str(check)


def make_abn(rng: random.Random) -> str:
    """A valid 11-digit ABN: nine random digits behind the two check digits they call for."""
    body = str(rng.randrange(100_000_000, 1_000_000_000))
    return stdnum_abn.calc_check_digits(body) + body


# --- the generator -----------------------------------------------------------------------------------------------


@dataclass
class AgentSpec:
    """An agent the register must contain (a practice under test), with how many current clients it has."""

    tan: str
    abn: str
    name: str
    kind: str = "TAX"
    clients: int = 0
    letters_per_client: float = 4.0


_FAMILY_NAMES = (
    "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Johnson", "White", "Martin", "Anderson",
    "Thompson", "Nguyen", "Thomas", "Walker", "Harris", "Lee", "Ryan", "Robinson", "Kelly", "King", "Davis",
    "Wright", "Evans", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke", "Patel", "Khan", "Lewis", "James",
    "Phillips", "Mitchell", "Turner", "Campbell", "Scott", "Murphy", "O'Brien", "Young", "Baker", "Hughes",
    "Edwards", "Cooper", "Stewart", "Morris", "Clark", "Bell", "Ward", "Watson", "Chen", "Wang", "Li", "Zhang",
    "Singh", "Kaur", "Tran", "Pham", "Le", "Murray", "Graham", "Russell", "Hill", "Adams", "Moore", "Cook",
    "Morgan", "Richardson", "Carter", "Shaw", "Collins", "Reid", "Ross", "Gray", "Simpson", "Kennedy", "Marshall",
    "Hunt", "Hamilton", "Johnston", "Fraser", "Grant", "McDonald", "Sullivan", "Walsh", "O'Connor", "Brennan",
    "Papadopoulos", "Rossi", "Russo", "Costa", "Kowalski", "Novak", "Ali", "Ahmed", "Hussain", "Sharma", "Kumar",
    "Gupta", "Kim", "Park", "Wong", "Chan", "Lim", "Tan", "Ng", "Santos", "Reyes", "Cruz", "Fernando", "Silva",
    "Smith-Jones", "Van der Berg", "MacKenzie", "D'Angelo", "Nakamura", "Sato", "Haddad", "Nasser", "Ivanov",
)  # fmt: skip
_GIVEN_NAMES = (
    "Oliver", "Jack", "William", "Noah", "Thomas", "James", "Lucas", "Henry", "Ethan", "Liam", "Samuel",
    "Daniel", "Benjamin", "Matthew", "Joshua", "Michael", "David", "Andrew", "Peter", "John", "Robert", "Mark",
    "Paul", "Stephen", "Christopher", "Mohammed", "Wei", "Minh", "Arjun", "Raj", "Hiroshi", "Luca", "Mateo",
    "Charlotte", "Olivia", "Amelia", "Isla", "Mia", "Ava", "Grace", "Chloe", "Emily", "Sophie", "Ruby", "Zoe",
    "Sarah", "Jessica", "Emma", "Hannah", "Lauren", "Rebecca", "Michelle", "Karen", "Susan", "Margaret",
    "Elizabeth", "Mary", "Patricia", "Jennifer", "Linda", "Aisha", "Mei", "Linh", "Priya", "Yuki", "Sofia",
    "Anh", "Fatima", "Jo", "Sam", "Alex", "Jordan", "Kim", "Chris", "Lee", "Bronwyn", "Kylie", "Shane", "Darren",
)  # fmt: skip
_STREETS = (
    "George", "King", "Queen", "High", "Church", "Victoria", "Elizabeth", "Railway", "Station", "Park", "Bridge",
    "Main", "Albert", "William", "Pitt", "Collins", "Bourke", "Hay", "Murray", "Wattle", "Banksia", "Acacia",
    "Ocean", "Beach", "Hill", "Forest", "Mill", "School", "Anzac", "Kent", "Oxford", "Cambridge", "Macquarie",
    "Flinders", "Swanston", "Lonsdale", "Grey", "Stirling", "Bay", "Waratah", "Jacaranda", "Boundary",
)  # fmt: skip
_STREET_TYPES = (
    "Street", "Street", "Street", "Road", "Road", "Avenue", "Parade", "Crescent", "Drive", "Place", "Lane",
    "Court", "Terrace", "Highway", "Way", "Close",
)  # fmt: skip
# Real localities and postcodes, so an address reads right as well as passing valid_postcode.
_LOCALITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "NSW": (
        ("SYDNEY", "2000"), ("PARRAMATTA", "2150"), ("NEWCASTLE", "2300"), ("WOLLONGONG", "2500"),
        ("PENRITH", "2750"), ("CHATSWOOD", "2067"), ("BONDI", "2026"), ("DUBBO", "2830"), ("WAGGA WAGGA", "2650"),
        ("ALBURY", "2640"), ("ORANGE", "2800"), ("TAMWORTH", "2340"), ("PORT MACQUARIE", "2444"),
        ("COFFS HARBOUR", "2450"), ("LIVERPOOL", "2170"), ("BLACKTOWN", "2148"), ("QUEANBEYAN", "2620"),
    ),
    "ACT": (
        ("CANBERRA", "2600"), ("BELCONNEN", "2617"), ("WODEN", "2606"), ("TUGGERANONG", "2900"),
        ("GUNGAHLIN", "2912"), ("KINGSTON", "2604"),
    ),
    "VIC": (
        ("MELBOURNE", "3000"), ("GEELONG", "3220"), ("BALLARAT", "3350"), ("BENDIGO", "3550"),
        ("FRANKSTON", "3199"), ("BOX HILL", "3128"), ("DANDENONG", "3175"), ("SHEPPARTON", "3630"),
        ("RICHMOND", "3121"), ("FOOTSCRAY", "3011"), ("WARRNAMBOOL", "3280"),
    ),
    "QLD": (
        ("BRISBANE", "4000"), ("SURFERS PARADISE", "4217"), ("CAIRNS", "4870"), ("TOWNSVILLE", "4810"),
        ("TOOWOOMBA", "4350"), ("ROCKHAMPTON", "4700"), ("MACKAY", "4740"), ("MAROOCHYDORE", "4558"),
        ("IPSWICH", "4305"), ("BUNDABERG", "4670"),
    ),
    "SA": (
        ("ADELAIDE", "5000"), ("GLENELG", "5045"), ("MOUNT GAMBIER", "5290"), ("WHYALLA", "5600"),
        ("PORT AUGUSTA", "5700"), ("ELIZABETH", "5112"), ("NORWOOD", "5067"),
    ),
    "WA": (
        ("PERTH", "6000"), ("FREMANTLE", "6160"), ("JOONDALUP", "6027"), ("BUNBURY", "6230"),
        ("GERALDTON", "6530"), ("KALGOORLIE", "6430"), ("BROOME", "6725"), ("ALBANY", "6330"),
    ),
    "TAS": (
        ("HOBART", "7000"), ("LAUNCESTON", "7250"), ("DEVONPORT", "7310"), ("BURNIE", "7320"),
        ("KINGSTON", "7050"),
    ),
    "NT": (("DARWIN", "0800"), ("PALMERSTON", "0830"), ("ALICE SPRINGS", "0870"), ("KATHERINE", "0850")),
}  # fmt: skip
# Weighted roughly by population, so most of the register is on the east coast as real practices' clients are.
_STATE_WEIGHTS = (("NSW", 31), ("VIC", 26), ("QLD", 20), ("WA", 11), ("SA", 7), ("TAS", 2), ("ACT", 2), ("NT", 1))
_AREA_CODES = {"NSW": "02", "ACT": "02", "VIC": "03", "TAS": "03", "QLD": "07", "SA": "08", "WA": "08", "NT": "08"}
_INDUSTRIES = (
    "Plumbing", "Electrical", "Construction", "Consulting", "Holdings", "Investments", "Transport", "Cafe",
    "Medical", "Dental", "Landscaping", "Engineering", "Imports", "Property", "Legal", "Design", "Hospitality",
    "Farming", "Logistics", "Retail", "Bakery", "Automotive", "Cleaning", "Physiotherapy", "Software",
)  # fmt: skip
_CLUBS = (
    "Football Club Inc", "Cricket Club Inc", "Netball Association Inc", "Community Association Inc",
    "Historical Society Inc", "Surf Life Saving Club Inc", "Bowls Club Ltd", "Men's Shed Inc", "Arts Council Inc",
)  # fmt: skip
_FUND_WORDS = (
    "Harbour", "Southern", "Coastal", "Pacific", "Unity", "Heritage", "Summit", "Horizon", "Meridian", "Eureka",
    "Federation", "Banksia", "Outback", "Capital", "Tasman", "Golden", "Sunrise", "Anchor",
)  # fmt: skip
_FUND_NOUNS = ("Workers", "Industry", "Retirement", "Members", "Employees", "Professionals", "Builders", "Health")
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")  # reserved: no letter ever reaches a real person
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip
_DEBT_TITLES = (
    "Overdue account: payment required",
    "Debt reminder: amount overdue",
    "Final notice: overdue account",
    "Statement of account",
)
_PPA_TITLES = ("Payment plan confirmation", "Payment plan varied", "Payment plan default: action required")
_AUD_TITLES = (
    "Audit: request for information",
    "Audit: notice of commencement",
    "Audit: position paper",
    "Audit: finalisation letter",
)
_REV_TITLES = (
    "Review: request for information",
    "Review: notice of proposed adjustment",
    "Review finalised: no further action",
)
_CONTACT_POSITIONS = {
    "IND": ("Authorised representative", "Spouse"),
    "COY": ("Director", "Financial controller", "Bookkeeper", "Office manager", "Company secretary"),
    "TRT": ("Trustee", "Bookkeeper", "Accountant"),
    "PTR": ("Partner", "Bookkeeper", "Office manager"),
    "SMF": ("Trustee", "Fund administrator"),
    "OTH": ("Treasurer", "Public officer", "Secretary"),
}
# The share of each non-individual entity among all taxpayers (individuals are the other 70%).
_ENTITY_WEIGHTS = (("COY", 12), ("TRT", 8), ("PTR", 4), ("SMF", 3), ("OTH", 3))
_EMPLOYER_SHARE = {"IND": 0.15, "COY": 0.6, "TRT": 0.35, "PTR": 0.35, "SMF": 0.0, "OTH": 0.5}
_GST_SHARE = {"IND": 0.85, "COY": 0.9, "TRT": 0.8, "PTR": 0.9, "SMF": 0.1, "OTH": 0.5}

_COLUMNS: dict[str, tuple[str, ...]] = {
    "reg_taxpayers": (
        "id", "tfn", "abn", "wpn", "entity", "family_name", "given_name", "other_given_name", "organisation_name",
        "legal_name", "birth_date", "death_date", "not_for_profit", "super_regulated", "quoted_tfn_for_super",
    ),
    "reg_accounts": ("id", "taxpayer_id", "kind", "branch", "start_date"),
    "reg_roles": ("account_id", "role"),
    "reg_agents": ("id", "tan", "abn", "name", "kind"),
    "reg_links": (
        "id", "agent_id", "taxpayer_id", "level", "account_id", "role", "start_date", "end_date", "ended_reason",
    ),
    "reg_addresses": (
        "id", "taxpayer_id", "account_id", "usage", "line1", "line2", "locality", "state", "postcode", "country",
        "phone", "email", "start_date", "end_date",
    ),
    "reg_bank_accounts": ("id", "taxpayer_id", "account_id", "bsb", "number", "account_name", "start_date", "end_date"),
    "reg_contacts": (
        "id", "taxpayer_id", "account_id", "family_name", "given_name", "position", "phone", "email", "start_date",
        "end_date",
    ),
    "reg_associates": ("id", "taxpayer_id", "associate_id", "relationship", "name", "start_date", "end_date"),
    "reg_communications": ("id", "taxpayer_id", "account_id", "kind", "title", "issued_date"),
    "reg_preferences": ("id", "agent_id", "taxpayer_id", "channel", "email", "updated_date"),
    "reg_funds": ("id", "abn", "usi", "name", "taxpayer_id"),
    "reg_members": ("id", "fund_id", "member_number", "taxpayer_id", "open_date", "closed_date"),
    "reg_meta": ("name", "value"),
}  # fmt: skip
_INSERT = {
    table: f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
    for table, columns in _COLUMNS.items()
}
_BATCH = 20_000  # rows held per table before an executemany: bounded memory at any register size
_FIRST_BIRTH = date(1940, 1, 1).toordinal()
_LAST_BIRTH = date(2005, 12, 31).toordinal()
_EARLIEST_TFN_USE = date(1985, 7, 1).toordinal()
_EARLIEST_ENTITY = date(1990, 1, 1).toordinal()
_YEAR = 365

Row = tuple[Any, ...]


class _Taxpayer:
    """What later passes need to know about a generated taxpayer (the row itself is already queued)."""

    __slots__ = ("abn", "as_accounts", "death", "email", "entity", "family", "given", "id", "itx", "name", "since")

    def __init__(self, id_: int, entity: str, family: str, given: str, name: str, abn: str | None, since: int) -> None:
        self.id = id_
        self.entity = entity
        self.family = family
        self.given = given
        self.name = name
        self.abn = abn
        self.since = since
        self.death: int | None = None
        self.email: str | None = None
        self.itx = 0
        self.as_accounts: list[tuple[int, tuple[str, ...]]] = []


LinkKey = tuple[int, str, int | None, str | None]  # taxpayer, level, account, role


class _Builder:
    def __init__(self, db: sqlite3.Connection, rng: random.Random, today: date) -> None:
        self.db = db
        self.rng = rng
        self.random = rng.random
        self.today = today.toordinal()
        self.rows: dict[str, list[Row]] = {table: [] for table in _COLUMNS}
        self.counts: dict[str, int] = dict.fromkeys(_COLUMNS, 0)
        self.iso_cache: dict[int, str] = {}
        self.slugs: dict[str, str] = {}
        self.tfns: set[str] = set()
        self.abns: set[str] = set()
        self.taxpayers: list[_Taxpayer] = []
        self.state_names = [state for state, _ in _STATE_WEIGHTS]
        self.state_cum = list(itertools.accumulate(weight for _, weight in _STATE_WEIGHTS))
        self.entity_names = [entity for entity, _ in _ENTITY_WEIGHTS]
        self.entity_cum = list(itertools.accumulate(weight for _, weight in _ENTITY_WEIGHTS))
        # Current links by key, with their start; ended links by key, with their end. A new current link on a key
        # starts no earlier than the ended one's end, and a new ended link ends no later than the current one's
        # start, so no key ever has overlapping periods.
        self.current: dict[LinkKey, int] = {}
        self.ended: dict[LinkKey, int] = {}

    # --- plumbing ---

    def add(self, table: str, row: Row) -> None:
        rows = self.rows[table]
        rows.append(row)
        if len(rows) >= _BATCH:
            self.flush(table)

    def row(self, table: str, *values: Any) -> int:
        """Queue a row whose first column is its id, and return that id."""
        self.counts[table] += 1
        new_id = self.counts[table]
        rows = self.rows[table]
        rows.append((new_id, *values))
        if len(rows) >= _BATCH:
            self.flush(table)
        return new_id

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.rows):
            rows = self.rows[name]
            if rows:
                self.db.executemany(_INSERT[name], rows)
                if name in ("reg_roles", "reg_meta"):
                    self.counts[name] += len(rows)
                rows.clear()

    def iso(self, ordinal: int) -> str:
        text = self.iso_cache.get(ordinal)
        if text is None:
            text = self.iso_cache[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def between(self, low: int, high: int) -> int:
        """A day from ``low`` to ``high`` inclusive (``low`` when the range is empty)."""
        return low + int(self.random() * (high - low + 1)) if high > low else low

    def pick(self, items: Sequence[Any]) -> Any:
        return items[int(self.random() * len(items))]

    def weighted(self, names: list[str], cumulative: list[int]) -> str:
        return names[bisect.bisect_right(cumulative, self.random() * cumulative[-1])]

    def periods(self, start: int, count: int) -> list[tuple[int, int | None]]:
        """``count`` ended periods and a current one, chained (each ends the day the next starts), from ``start``."""
        room = self.today - start - 1
        count = max(0, min(count, room))
        cuts = sorted(self.rng.sample(range(start + 1, self.today), count)) if count else []
        starts = [start, *cuts]
        ends: list[int | None] = [*cuts, None]
        return list(zip(starts, ends, strict=True))

    def new_tfn(self) -> str:
        while True:
            tfn = make_tfn(self.rng)
            if tfn not in self.tfns:
                self.tfns.add(tfn)
                return tfn

    def new_abn(self) -> str:
        while True:
            number = make_abn(self.rng)
            if number not in self.abns:
                self.abns.add(number)
                return number

    def person(self) -> tuple[str, str]:
        return self.pick(_FAMILY_NAMES), self.pick(_GIVEN_NAMES)

    def phone(self, state: str, mobile: bool) -> str:
        if mobile:
            return f"04{int(self.random() * 100_000_000):08d}"
        return f"{_AREA_CODES[state]}{int(self.random() * 90_000_000) + 10_000_000:08d}"

    def email(self, local: str) -> str:
        slug = self.slugs.get(local)
        if slug is None:
            # Names repeat endlessly across a large register: clean each one once.
            slug = "".join(ch for ch in local.lower() if ch.isalnum() or ch == ".").strip(".") or "mail"
            self.slugs[local] = slug
        return f"{slug}{int(self.random() * 1000)}@{self.pick(_EMAIL_DOMAINS)}"

    def place(self, state: str) -> tuple[str, str]:
        locality: tuple[str, str] = self.pick(_LOCALITIES[state])
        return locality

    def street(self) -> str:
        number = int(self.random() * 250) + 1
        line = f"{number} {self.pick(_STREETS)} {self.pick(_STREET_TYPES)}"
        return f"{int(self.random() * 20) + 1}/{line}" if self.random() < 0.15 else line

    # --- the whole register ---

    def run(self, seed: int, taxpayers: int, specs: list[AgentSpec]) -> dict[str, int]:
        rng = self.rng
        for spec in specs:
            self.abns.add(spec.abn)
        total = max(taxpayers, sum(spec.clients for spec in specs))
        order = list(range(total))
        rng.shuffle(order)
        # Each given agent gets its own clients, so their current links never compete with one another; the
        # register grows when they need more taxpayers than were asked for.
        owner = [-1] * total
        position = 0
        for number, spec in enumerate(specs):
            for index in order[position : position + spec.clients]:
                owner[index] = number
            position += spec.clients
        fund_count = min(total, total // 500 + 2)
        fund_kinds: dict[int, str] = {}
        for number, index in enumerate(order[total - fund_count :]):
            # The first two are large public-offer funds; the rest mostly self-managed.
            fund_kinds[index] = "COY" if number < 2 or self.random() < 0.3 else "SMF"

        for index in range(total):
            self.taxpayer(index + 1, fund_kinds.get(index), specs[owner[index]] if owner[index] >= 0 else None)
        funds = [self.taxpayers[index] for index in order[total - fund_count :]]
        self.associates_and_funds(funds)
        self.agents_and_links(specs, owner)
        for name, value in (("seed", seed), ("taxpayers", total), ("generated_at", self.iso(self.today))):
            self.add("reg_meta", (name, str(value)))
        self.flush()
        return {table: self.counts[table] for table in TABLES}

    # --- taxpayers and everything that belongs to one ---

    def taxpayer(self, tid: int, fund_kind: str | None, spec: AgentSpec | None) -> None:
        random_ = self.random
        today = self.today
        # BAS agents and payroll providers act only on activity statement accounts: their clients need an ABN.
        needs_abn = spec is not None and spec.kind != "TAX"
        if fund_kind is not None:
            entity = fund_kind
        elif random_() < 0.70:
            entity = "IND"
        else:
            entity = self.weighted(self.entity_names, self.entity_cum)
        family, given = self.person()
        other = None
        birth = death = None
        legal = organisation = None
        not_for_profit = super_regulated = 0
        wpn = None
        if entity == "IND":
            if random_() < 0.4:
                other = self.pick(_GIVEN_NAMES)
            birth = self.between(_FIRST_BIRTH, _LAST_BIRTH)
            since = min(max(birth + 18 * _YEAR, _EARLIEST_TFN_USE), today - 30)
            number = self.new_abn() if needs_abn or random_() < 0.15 else None
            if number is None and random_() < 0.005:
                wpn = self.new_abn()  # WPNs share the ABN's shape and check digits in the sandbox
            if random_() < 0.01:
                death = self.between(min(max(since + 30, today - 5 * _YEAR), today - 1), today - 1)
            name = f"{given} {family}"
        else:
            since = self.between(_EARLIEST_ENTITY, today - 60)
            number = self.new_abn() if needs_abn or entity not in ("TRT", "OTH") or random_() < 0.92 else None
            if number is None and random_() < 0.05:
                wpn = self.new_abn()
            family2, given2 = self.person()
            if entity == "COY" and fund_kind is not None:
                organisation = f"{self.pick(_FUND_WORDS)} {self.pick(_FUND_NOUNS)} Superannuation Fund"
                super_regulated = 1
            elif entity == "COY":
                prefix = family if random_() < 0.6 else self.pick(_LOCALITIES["NSW"])[0].title()
                organisation = f"{prefix} {self.pick(_INDUSTRIES)} {'Pty Ltd' if random_() < 0.95 else 'Ltd'}"
            elif entity == "TRT":
                organisation = f"The {family} {self.pick(('Family Trust', 'Unit Trust', 'Discretionary Trust'))}"
                legal = f"The Trustee for {organisation}"
            elif entity == "SMF":
                organisation = f"{family} {self.pick(('Superannuation Fund', 'Family Super Fund', 'Super Fund'))}"
                legal = f"The Trustee for {organisation}"
                super_regulated = 1
            elif entity == "PTR":
                organisation = f"{family} & {family2} {self.pick(_INDUSTRIES)}"
                legal = f"{given[0]} {family} & {given2[0]} {family2}"
            else:
                state_ = self.weighted(self.state_names, self.state_cum)
                place = self.pick(_LOCALITIES[state_])[0].title()
                if random_() < 0.8:
                    organisation = f"{place} {self.pick(_CLUBS)}"
                    not_for_profit = 1 if random_() < 0.85 else 0
                else:
                    organisation = f"{family} Foundation Ltd"
                    not_for_profit = 1 if random_() < 0.6 else 0
            name = organisation
        self.add(
            "reg_taxpayers",
            (
                tid,
                self.new_tfn(),
                number,
                wpn,
                entity,
                family if entity == "IND" else None,
                given if entity == "IND" else None,
                other,
                organisation,
                legal,
                self.iso(birth) if birth is not None else None,
                self.iso(death) if death is not None else None,
                not_for_profit,
                super_regulated,
                1 if random_() < 0.95 else 0,
            ),
        )
        self.counts["reg_taxpayers"] += 1
        taxpayer = _Taxpayer(tid, entity, family, given, name, number, since)
        taxpayer.death = death
        self.taxpayers.append(taxpayer)
        self.accounts(taxpayer, fund_kind is not None)
        state = self.addresses(taxpayer)
        self.bank_accounts(taxpayer, state)
        self.contacts(taxpayer, state)
        letters = spec.letters_per_client if spec is not None else None
        self.communications(taxpayer, letters)

    def accounts(self, taxpayer: _Taxpayer, is_fund: bool) -> None:
        random_ = self.random
        since = taxpayer.since
        taxpayer.itx = self.row("reg_accounts", taxpayer.id, "ITX", None, self.iso(since))
        if taxpayer.abn is None:
            return
        entity = taxpayer.entity
        employer = is_fund or random_() < _EMPLOYER_SHARE[entity]
        roles = []
        if random_() < _GST_SHARE[entity]:
            roles.append("GST")
        if employer:
            roles.append("PAYGW")
        if random_() < 0.4:
            roles.append("PAYGI")
        if employer and random_() < 0.08:
            roles.append("FBTI")
        if random_() < 0.02:
            roles.append("FTC")
        if random_() < 0.005:
            roles.append("WET")
        if random_() < 0.005:
            roles.append("LCT")
        if not roles:
            roles.append("GST")
        start = self.between(since, min(since + _YEAR, self.today - 30))
        first = self.row("reg_accounts", taxpayer.id, "AS", "001", self.iso(start))
        for role in roles:
            self.add("reg_roles", (first, role))
        taxpayer.as_accounts.append((first, tuple(roles)))
        if random_() < (0.2 if entity == "COY" else 0.05):
            # A second branch: usually a separately run division with its own GST and often its own payroll.
            branch_roles = ("GST", "PAYGW") if random_() < 0.5 else ("GST",)
            second = self.row("reg_accounts", taxpayer.id, "AS", "002", self.iso(self.between(start, self.today - 30)))
            for role in branch_roles:
                self.add("reg_roles", (second, role))
            taxpayer.as_accounts.append((second, branch_roles))
        if employer and entity != "IND" and random_() < 0.3:
            self.row("reg_accounts", taxpayer.id, "FBT", None, self.iso(start))

    def addresses(self, taxpayer: _Taxpayer) -> str:
        """Queue the taxpayer's address history; return the state it lives in now."""
        random_ = self.random
        tid = taxpayer.id
        usage = "RES" if taxpayer.entity == "IND" else "BUS"
        state = self.weighted(self.state_names, self.state_cum)
        roll = random_()
        previous = 0 if roll < 0.55 else 1 if roll < 0.80 else 2 if roll < 0.93 else 3
        periods = self.periods(taxpayer.since, previous)
        places: list[tuple[str, str | None, str, str, str]] = []
        for number, (start, end) in enumerate(periods):
            # Most moves stay within the state; the last period is where the taxpayer is now.
            where = state if end is None or random_() < 0.85 else self.weighted(self.state_names, self.state_cum)
            locality, postcode = self.place(where)
            line2 = f"Level {int(random_() * 20) + 1}" if usage == "BUS" and random_() < 0.2 else None
            line1 = self.street()
            places.append((line1, line2, locality, where, postcode))
            self.row(
                "reg_addresses", tid, None, usage, line1, line2, locality, where, postcode, "au", None, None,
                self.iso(start), self.iso(end) if end is not None else None,
            )  # fmt: skip
            if number == len(periods) - 2 or end is None:
                # The postal address follows the last two homes: one ended row, then the current one.
                if end is not None or random_() < 0.6:
                    post = (line1, line2, locality, where, postcode)
                else:
                    post = (f"PO Box {int(random_() * 9000) + 1}", None, locality, where, postcode)
                self.row(
                    "reg_addresses", tid, None, "POS", *post, "au", None, None,
                    self.iso(start), self.iso(end) if end is not None else None,
                )  # fmt: skip
        if random_() < 0.92:
            mobile = taxpayer.entity == "IND" or random_() < 0.3
            for start, end in self.periods(self.between(taxpayer.since, self.today - 1), 1 if random_() < 0.15 else 0):
                self.row(
                    "reg_addresses", tid, None, "PHN", None, None, None, None, None, None,
                    self.phone(state, mobile), None, self.iso(start), self.iso(end) if end is not None else None,
                )  # fmt: skip
        if random_() < (0.8 if taxpayer.entity == "IND" else 0.9):
            local = f"{taxpayer.given}.{taxpayer.family}" if taxpayer.entity == "IND" else "accounts"
            for start, end in self.periods(self.between(taxpayer.since, self.today - 1), 1 if random_() < 0.1 else 0):
                taxpayer.email = self.email(local)
                self.row(
                    "reg_addresses", tid, None, "EML", None, None, None, None, None, None, None, taxpayer.email,
                    self.iso(start), self.iso(end) if end is not None else None,
                )  # fmt: skip
        if taxpayer.entity in ("COY", "OTH") and random_() < 0.3:
            slug = "".join(ch for ch in taxpayer.name.lower() if ch.isalnum())[:24]
            self.row(
                "reg_addresses", tid, None, "WEB", None, None, None, None, None, None, None,
                f"https://www.{slug}.example.com", self.iso(self.between(taxpayer.since, self.today - 1)), None,
            )  # fmt: skip
        for number, (account, _roles) in enumerate(taxpayer.as_accounts):
            # A second branch always trades from its own address; the main account now and then has its own.
            if number > 0 or random_() < 0.15:
                locality, postcode = self.place(state)
                self.row(
                    "reg_addresses", tid, account, "BUS", self.street(), None, locality, state, postcode, "au",
                    None, None, self.iso(self.between(taxpayer.since, self.today - 1)), None,
                )  # fmt: skip
        return state

    def bsb(self, state: str) -> str:
        prefix = self.pick(_BANK_PREFIX_LIST)
        return f"{prefix}{BSB_STATE_DIGIT[state]}{int(self.random() * 1000):03d}"

    def bank_accounts(self, taxpayer: _Taxpayer, state: str) -> None:
        random_ = self.random
        account_name = taxpayer.name[:32]  # the BECS account title field holds 32 characters
        if random_() < 0.85:
            start = self.between(taxpayer.since, self.today - 1)
            for begin, end in self.periods(start, 1 if random_() < 0.2 else 0):
                self.row(
                    "reg_bank_accounts", taxpayer.id, None, self.bsb(state),
                    str(int(random_() * 900_000_000) + 100_000), account_name,
                    self.iso(begin), self.iso(end) if end is not None else None,
                )  # fmt: skip
        for account, _roles in taxpayer.as_accounts:
            if random_() < 0.2:
                self.row(
                    "reg_bank_accounts", taxpayer.id, account, self.bsb(state),
                    str(int(random_() * 900_000_000) + 100_000), account_name,
                    self.iso(self.between(taxpayer.since, self.today - 1)), None,
                )  # fmt: skip

    def contacts(self, taxpayer: _Taxpayer, state: str) -> None:
        random_ = self.random
        positions = _CONTACT_POSITIONS[taxpayer.entity]
        if taxpayer.entity == "IND":
            count = 1 if random_() < 0.03 else 0
        else:
            count = (2 if random_() < 0.3 else 1) if random_() < 0.9 else 0
        for _ in range(count):
            family, given = self.person()
            start = self.between(taxpayer.since, self.today - 1)
            if random_() < 0.15:
                # An earlier contact who has since left.
                old_family, old_given = self.person()
                old_start = self.between(taxpayer.since, start)
                self.row(
                    "reg_contacts", taxpayer.id, None, old_family, old_given, self.pick(positions),
                    self.phone(state, True), self.email(f"{old_given}.{old_family}"),
                    self.iso(old_start), self.iso(start),
                )  # fmt: skip
            self.row(
                "reg_contacts", taxpayer.id, None, family, given, self.pick(positions), self.phone(state, True),
                self.email(f"{given}.{family}"), self.iso(start), None,
            )  # fmt: skip
        for account, _roles in taxpayer.as_accounts:
            if random_() < 0.1:
                family, given = self.person()
                self.row(
                    "reg_contacts", taxpayer.id, account, family, given, "Bookkeeper", self.phone(state, False),
                    self.email(f"{given}.{family}"), self.iso(self.between(taxpayer.since, self.today - 1)), None,
                )  # fmt: skip

    def communications(self, taxpayer: _Taxpayer, letters_per_client: float | None) -> None:
        random_ = self.random
        if letters_per_client is not None:
            # Uniform over 0..2L: the mean is L, and clients still differ.
            count = int(random_() * (2 * letters_per_client + 1))
        else:
            roll = random_()
            count = 0 if roll < 0.3 else 1 if roll < 0.65 else 2 if roll < 0.85 else 3 if roll < 0.95 else 4
        if not count:
            return
        low = max(taxpayer.since, self.today - 3 * _YEAR)
        has_as = bool(taxpayer.as_accounts)
        for _ in range(count):
            issued = self.iso(self.between(low, self.today))
            year, month = int(issued[:4]), int(issued[5:7])
            roll = random_()
            as_account = self.pick(taxpayer.as_accounts)[0] if has_as else None
            if has_as and roll < 0.4:
                # The reminder follows the quarter that ended most recently before it was issued.
                quarter_month = (month - 1) // 3 * 3
                quarter_year = year if quarter_month else year - 1
                due = "overdue" if random_() < 0.1 else "reminder"
                title = f"Activity statement {due}: {_MONTHS[(quarter_month or 12) - 1]} {quarter_year} quarter"
                row: Row = (taxpayer.id, as_account, "ASR", title, issued)
            elif roll < 0.7:
                income_year = year if month >= 7 else year - 1
                amended = "amended " if random_() < 0.1 else ""
                row = (taxpayer.id, taxpayer.itx, "NOA", f"Notice of {amended}assessment {income_year}", issued)
            elif roll < 0.82:
                row = (taxpayer.id, as_account or taxpayer.itx, "DEBT", self.pick(_DEBT_TITLES), issued)
            elif roll < 0.9:
                row = (taxpayer.id, as_account or taxpayer.itx, "PPA", self.pick(_PPA_TITLES), issued)
            elif roll < 0.95:
                account = taxpayer.itx if random_() < 0.6 else as_account
                row = (taxpayer.id, account, "AUD", self.pick(_AUD_TITLES), issued)
            else:
                row = (taxpayer.id, taxpayer.itx if random_() < 0.5 else None, "REV", self.pick(_REV_TITLES), issued)
            self.row("reg_communications", *row)

    # --- associates, super funds and members ---

    def associates_and_funds(self, funds: list[_Taxpayer]) -> None:
        random_ = self.random
        people = [t for t in self.taxpayers if t.entity == "IND" and t.death is None]
        smsf_trustees: dict[int, list[_Taxpayer]] = {}

        def someone(link_share: float) -> tuple[int | None, str]:
            """An associate: often a living individual of the register, otherwise just a name."""
            if people and random_() < link_share:
                person: _Taxpayer = self.pick(people)
                return person.id, person.name
            family, given = self.person()
            return None, f"{given} {family}"

        for taxpayer in self.taxpayers:
            entity = taxpayer.entity
            if entity == "IND":
                continue
            tid = taxpayer.id
            since = taxpayer.since
            start = self.iso(since)
            if entity == "COY":
                directors = [someone(0.7) for _ in range(1 + int(random_() * 3))]
                for associate_id, name in directors:
                    self.row("reg_associates", tid, associate_id, "DIR", name, start, None)
                if random_() < 0.15:
                    # A former director.
                    associate_id, name = someone(0.5)
                    self.row(
                        "reg_associates", tid, associate_id, "DIR", name, start,
                        self.iso(self.between(since + 1, self.today - 1)),
                    )  # fmt: skip
                if random_() < 0.3:
                    associate_id, name = directors[0]
                    self.row("reg_associates", tid, associate_id, "SEC", name, start, None)
            elif entity == "TRT":
                if random_() < 0.6:
                    self.row("reg_associates", tid, None, "TEE", f"{taxpayer.family} Holdings Pty Ltd", start, None)
                else:
                    for _ in range(1 + int(random_() * 2)):
                        associate_id, name = someone(0.6)
                        self.row("reg_associates", tid, associate_id, "TEE", name, start, None)
                for _ in range(int(random_() * 4)):
                    associate_id, name = someone(0.5)
                    self.row("reg_associates", tid, associate_id, "BEN", name, start, None)
            elif entity == "SMF":
                trustees = []
                for _ in range(1 + int(random_() * 4)):
                    associate_id, name = someone(0.8)
                    self.row("reg_associates", tid, associate_id, "TEE", name, start, None)
                    if associate_id is not None:
                        trustees.append(self.taxpayers[associate_id - 1])
                smsf_trustees[tid] = trustees
            elif entity == "PTR":
                for _ in range(2 + int(random_() * 3)):
                    associate_id, name = someone(0.7)
                    self.row("reg_associates", tid, associate_id, "PTR", name, start, None)
            if entity in ("COY", "TRT", "OTH"):
                # One public officer at a time: the history is a chain of periods.
                for begin, end in self.periods(since, 1 if random_() < 0.2 else 0):
                    associate_id, name = someone(0.5)
                    self.row(
                        "reg_associates", tid, associate_id, "PUB", name, self.iso(begin),
                        self.iso(end) if end is not None else None,
                    )  # fmt: skip
        self.funds_and_members(funds, people, smsf_trustees)

    def funds_and_members(
        self, funds: list[_Taxpayer], people: list[_Taxpayer], smsf_trustees: dict[int, list[_Taxpayer]]
    ) -> None:
        random_ = self.random
        public: list[int] = []
        next_number: dict[int, int] = {}
        for taxpayer in funds:
            assert taxpayer.abn is not None  # every fund was generated with an ABN
            fund_id = self.row("reg_funds", taxpayer.abn, taxpayer.abn + "001", taxpayer.name, taxpayer.id)
            if taxpayer.entity == "SMF":
                # A self-managed fund's members are its trustees.
                seen: set[int] = set()
                for trustee in smsf_trustees.get(taxpayer.id, []):
                    if trustee.id not in seen:
                        seen.add(trustee.id)
                        self.row(
                            "reg_members", fund_id, f"M{len(seen):03d}", trustee.id,
                            self.iso(self.between(max(taxpayer.since, trustee.since), self.today - 1)), None,
                        )  # fmt: skip
            else:
                public.append(fund_id)
                next_number[fund_id] = self.rng.randrange(10_000_000, 50_000_000)
        if not public:
            return
        for person in (t for t in self.taxpayers if t.entity == "IND"):
            if random_() >= 0.27:
                continue
            if person.death is not None:
                # One account, closed when the member died.
                periods: list[tuple[int, int | None]] = [(self.between(person.since, person.death - 1), person.death)]
            else:
                # A rollover closes the old account the day the new one opens.
                periods = self.periods(self.between(person.since, self.today - 1), 1 if random_() < 0.2 else 0)
            for begin, end in periods:
                fund_id = self.pick(public)
                next_number[fund_id] += 1 + int(random_() * 40)
                self.row(
                    "reg_members", fund_id, str(next_number[fund_id]), person.id, self.iso(begin),
                    self.iso(end) if end is not None else None,
                )  # fmt: skip
        del people  # kept in the signature: members could come from any living individual

    # --- agents, links and preferences ---

    def choose_level(self, kind: str, taxpayer: _Taxpayer) -> tuple[str, int | None, str | None] | None:
        """A plausible link for an agent of ``kind``; None when a BAS agent or payroll provider has nothing to act
        on (no activity statement account)."""
        random_ = self.random
        accounts = taxpayer.as_accounts
        if kind == "TAX":
            roll = random_()
            if roll < 0.8 or not accounts:
                return ("CLIENT", None, None)
            account, roles = self.pick(accounts)
            return ("ACCOUNT", account, None) if roll < 0.9 else ("ROLE", account, self.pick(roles))
        if not accounts:
            return None
        account, roles = self.pick(accounts)
        if kind == "PAY":
            return ("ROLE", account, "PAYGW") if "PAYGW" in roles else ("ACCOUNT", account, None)
        return ("ACCOUNT", account, None) if random_() < 0.6 else ("ROLE", account, self.pick(roles))

    def link(self, agent: int, taxpayer: _Taxpayer, level: tuple[str, int | None, str | None], start: int) -> bool:
        """Add a current link unless one already holds its key; it starts after any ended link on that key."""
        key: LinkKey = (taxpayer.id, *level)
        if key in self.current:
            return False
        start = max(start, self.ended.get(key, start))
        self.current[key] = start
        self.row("reg_links", agent, taxpayer.id, *level, self.iso(start), None, None)
        return True

    def ended_link(
        self,
        agent: int,
        taxpayer: _Taxpayer,
        level: tuple[str, int | None, str | None],
        start: int,
        end: int,
        reason: str,
    ) -> bool:
        """Add an ended link, ending no later than the current link on its key starts (one ended period per key)."""
        key: LinkKey = (taxpayer.id, *level)
        if key in self.ended:
            return False
        end = min(end, self.current.get(key, end))
        start = min(start, end - 1)
        self.ended[key] = end
        self.row("reg_links", agent, taxpayer.id, *level, self.iso(start), self.iso(end), reason)
        return True

    def agents_and_links(self, specs: list[AgentSpec], owner: list[int]) -> None:
        rng = self.rng
        random_ = self.random
        today = self.today
        taxpayers = self.taxpayers
        tans = {spec.tan for spec in specs}
        given_ids = [self.row("reg_agents", spec.tan, spec.abn, spec.name, spec.kind) for spec in specs]

        # Other practices, so the given agents are not alone: mostly tax agents, some BAS agents, of varied size.
        kinds: dict[str, list[int]] = {"TAX": [], "BAS": []}
        weights: dict[str, list[int]] = {"TAX": [], "BAS": []}
        for number in range(max(3, len(taxpayers) // 1000)):
            kind = ("TAX", "BAS", "TAX")[number] if number < 3 else ("TAX" if random_() < 0.7 else "BAS")
            while True:
                tan = str(rng.randrange(10_000_000, 100_000_000))
                if tan not in tans:
                    tans.add(tan)
                    break
            family, given = self.person()
            family2, _ = self.person()
            place = self.pick(_LOCALITIES[self.weighted(self.state_names, self.state_cum)])[0].title()
            if kind == "TAX":
                name = self.pick(
                    (f"{family} & {family2} Accountants", f"{family} Tax Advisers Pty Ltd", f"{place} Tax Services")
                )
            else:
                name = self.pick((f"{given} {family} Bookkeeping", f"{place} BAS Services Pty Ltd"))
            kinds[kind].append(self.row("reg_agents", tan, self.new_abn(), name, kind))
            weights[kind].append(1 + int(random_() * 10))
        cumulative = {kind: list(itertools.accumulate(weights[kind])) for kind in kinds}

        def other(kind: str) -> int:
            agents = kinds[kind]
            return agents[bisect.bisect_right(cumulative[kind], random_() * cumulative[kind][-1])]

        def some_other(level: str) -> int:
            """Any other practice able to hold a link at ``level`` (BAS agents only below client level)."""
            return other("TAX" if level == "CLIENT" or random_() < 0.6 else "BAS")

        # The given agents' current clients, exactly as many as asked for.
        clients: list[list[_Taxpayer]] = [[] for _ in specs]
        for index, number in enumerate(owner):
            if number >= 0:
                clients[number].append(taxpayers[index])
        unowned = [taxpayers[index] for index, number in enumerate(owner) if number < 0]
        for number, spec in enumerate(specs):
            agent = given_ids[number]
            for taxpayer in clients[number]:
                level = self.choose_level(spec.kind, taxpayer)
                assert level is not None  # BAS and payroll clients were generated with an AS account
                self.link(agent, taxpayer, level, self.between(max(taxpayer.since, today - 12 * _YEAR), today - 1))
                if level[0] != "CLIENT" and random_() < 0.3:
                    # Another practice held this account or role until the given agent took it over.
                    start = self.current[(taxpayer.id, *level)]
                    self.ended_link(
                        some_other(level[0]), taxpayer, level, self.between(taxpayer.since, start - 1), start,
                        "SUPERSEDED",
                    )  # fmt: skip
                elif random_() < 0.03:
                    # The agent's own earlier link at another level, ended when the current one began.
                    start = self.current[(taxpayer.id, *level)]
                    earlier = self.choose_level(spec.kind, taxpayer)
                    if earlier is not None and earlier != level:
                        self.ended_link(
                            agent, taxpayer, earlier, self.between(taxpayer.since, start - 1), start, "REMOVED"
                        )
            # Former clients: history only, never counted among the current ones.
            pool = unowned or [t for t in taxpayers if owner[t.id - 1] != number]
            for _ in range(min(len(pool), max(1, spec.clients * 3 // 100)) if spec.clients else 0):
                taxpayer = self.pick(pool)
                level = self.choose_level(spec.kind, taxpayer)
                if level is not None:
                    start = self.between(max(taxpayer.since, today - 10 * _YEAR), today - 60)
                    end = self.between(start + 1, today - 1)
                    self.ended_link(agent, taxpayer, level, start, end, self.pick(("CLIENT", "REMOVED")))

        # Other practices' roles on the given agents' clients: adding a role-level link there ends theirs.
        for number in range(len(specs)):
            eligible = [t for t in clients[number] if t.as_accounts]
            chosen = [t for t in eligible if random_() < 0.06] or eligible[:1]
            for taxpayer in chosen:
                account, roles = self.pick(taxpayer.as_accounts)
                for role in roles:
                    level = ("ROLE", account, role)
                    if self.link(some_other("ROLE"), taxpayer, level, self.between(taxpayer.since, today - 1)):
                        break

        # Everybody else: most taxpayers use an agent; some changed agents (history).
        for taxpayer in unowned:
            if random_() >= 0.7:
                continue
            kind = "TAX" if random_() < 0.85 else "BAS"
            level = self.choose_level(kind, taxpayer)
            if level is None:
                kind = "TAX"
                level = self.choose_level(kind, taxpayer)
                assert level is not None  # a tax agent can always link at client level
            start = self.between(max(taxpayer.since, today - 15 * _YEAR), today - 1)
            agent = other(kind)
            self.link(agent, taxpayer, level, start)
            if kind == "TAX" and taxpayer.as_accounts and random_() < 0.1:
                bas = self.choose_level("BAS", taxpayer)
                assert bas is not None
                self.link(other("BAS"), taxpayer, bas, self.between(taxpayer.since, today - 1))
            if random_() < 0.05:
                previous = other(kind)
                if previous != agent:
                    reason = "CLIENT" if level[0] == "CLIENT" else "SUPERSEDED"
                    began = self.current[(taxpayer.id, *level)]
                    self.ended_link(previous, taxpayer, level, self.between(taxpayer.since, began - 1), began, reason)

        # Communication preferences: a practice default for every agent, and some per-client overrides.
        updated = self.iso(self.between(today - 2 * _YEAR, today - 1))
        for number, agent in enumerate(given_ids):
            self.row("reg_preferences", agent, None, "ELEC", None, updated)
            chosen = rng.sample(clients[number], min(len(clients[number]), max(3, len(clients[number]) // 50)))
            for taxpayer in sorted(chosen, key=lambda t: t.id):
                by_email = taxpayer.email is not None and random_() < 0.5
                self.row(
                    "reg_preferences", agent, taxpayer.id, "EMAIL" if by_email else "POST",
                    taxpayer.email if by_email else None, self.iso(self.between(today - 2 * _YEAR, today - 1)),
                )  # fmt: skip
        for agent in [*kinds["TAX"], *kinds["BAS"]]:
            self.row("reg_preferences", agent, None, "ELEC" if random_() < 0.9 else "POST", None, updated)


_BANK_PREFIX_LIST = tuple(BANK_PREFIXES)
# The schema's secondary indexes, statement and name from the same match, so none can be dropped and not rebuilt.
_INDEXES = tuple(re.findall(r"(CREATE INDEX IF NOT EXISTS (\w+) ON \w+ \([^)]*\))", SCHEMA))
_INDEX_STATEMENTS = tuple(statement for statement, _ in _INDEXES)
_INDEX_NAMES = tuple(name for _, name in _INDEXES)


def generate(
    db: sqlite3.Connection,
    *,
    seed: int = 1,
    taxpayers: int = 3000,
    agents: Sequence[AgentSpec] = (),
    today: date | None = None,
) -> dict[str, int]:
    """Replace the register with a synthetic one; return the number of rows in each table.

    The same ``seed``, ``taxpayers``, ``agents`` and ``today`` give identical rows on any machine. The register
    grows beyond ``taxpayers`` when the given agents' clients need more. Runs in the caller's transaction if there
    is one, otherwise in its own.
    """
    specs = list(agents)
    _check_specs(specs)
    if taxpayers < 0:
        raise ValueError("taxpayers must not be negative")
    own = not db.in_transaction
    if own:
        db.execute("BEGIN IMMEDIATE")
    try:
        clear(db)
        # Building the secondary indexes once over the loaded rows is cheaper than keeping them current row by
        # row; the statements are the schema's own, so the schema ends exactly as it began.
        for name in _INDEX_NAMES:
            db.execute(f"DROP INDEX IF EXISTS {name}")
        counts = _Builder(db, random.Random(seed), today or date.today()).run(seed, taxpayers, specs)
        for statement in _INDEX_STATEMENTS:
            db.execute(statement)
    except BaseException:
        if own:
            db.execute("ROLLBACK")
        raise
    if own:
        db.execute("COMMIT")
    return counts


def _check_specs(specs: Sequence[AgentSpec]) -> None:
    tans: set[str] = set()
    for spec in specs:
        if not spec.tan or spec.tan in tans:
            raise ValueError(f"agent TANs must be present and distinct: {spec.tan!r}")
        tans.add(spec.tan)
        if spec.kind not in AGENT_KINDS:
            raise ValueError(f"agent {spec.tan}: kind must be one of {', '.join(AGENT_KINDS)}")
        if spec.clients < 0 or spec.letters_per_client < 0:
            raise ValueError(f"agent {spec.tan}: clients and letters_per_client must not be negative")


# --- queries the services share ------------------------------------------------------------------------------------


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    # Built from the cursor's description, so the caller's row_factory (tuples or sqlite3.Row) does not matter.
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def find_taxpayer(
    db: sqlite3.Connection, *, tfn: str | None = None, abn: str | None = None, wpn: str | None = None
) -> dict[str, Any] | None:
    """The taxpayer with every identifier given (spaces ignored), or None."""
    conditions = []
    values = []
    for column, value in (("tfn", tfn), ("abn", abn), ("wpn", wpn)):
        if value is not None:
            conditions.append(f"{column} = ?")
            values.append("".join(value.split()))
    if not conditions:
        raise ValueError("find_taxpayer needs a TFN, an ABN or a WPN")
    rows = _dicts(db.execute(f"SELECT * FROM reg_taxpayers WHERE {' AND '.join(conditions)}", values))  # noqa: S608
    return rows[0] if rows else None


def agent_by_tan(db: sqlite3.Connection, tan: str) -> dict[str, Any] | None:
    rows = _dicts(db.execute("SELECT * FROM reg_agents WHERE tan = ?", (tan,)))
    return rows[0] if rows else None


def current_links(db: sqlite3.Connection, agent_id: int, taxpayer_id: int) -> list[dict[str, Any]]:
    return _dicts(
        db.execute(
            "SELECT * FROM reg_links WHERE agent_id = ? AND end_date IS NULL AND taxpayer_id = ? ORDER BY id",
            (agent_id, taxpayer_id),
        )
    )


def has_access(
    db: sqlite3.Connection, agent_id: int, taxpayer_id: int, account_id: int | None = None, role: str | None = None
) -> bool:
    """Whether a current link covers the taxpayer (no account, no role), an account, or a role.

    A CLIENT link covers everything of the taxpayer; an ACCOUNT link covers its account and that account's roles; a
    ROLE link covers its role only. A role asked for without an account is covered by a ROLE link for it on any
    account, or an ACCOUNT link on an account that has it.
    """
    for link in current_links(db, agent_id, taxpayer_id):
        level = link["level"]
        if level == "CLIENT":
            return True
        if account_id is not None:
            if link["account_id"] != account_id:
                continue
            if level == "ACCOUNT" or (level == "ROLE" and role is not None and link["role"] == role):
                return True
        elif role is not None:
            if level == "ROLE" and link["role"] == role:
                return True
            if level == "ACCOUNT":
                held = db.execute(
                    "SELECT 1 FROM reg_roles WHERE account_id = ? AND role = ?", (link["account_id"], role)
                )
                if held.fetchone():
                    return True
    return False


def client_count(db: sqlite3.Connection, agent_id: int) -> int:
    """How many taxpayers the agent has at least one current link with."""
    row = db.execute(
        "SELECT count(DISTINCT taxpayer_id) FROM reg_links WHERE agent_id = ? AND end_date IS NULL", (agent_id,)
    ).fetchone()
    return int(row[0])


# --- the control interface (``/_control/register``) ---------------------------------------------------------------


def summary(db: sqlite3.Connection) -> dict[str, Any]:
    """Row counts, the generation's parameters and the agents with their current client numbers."""
    counts = {table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in TABLES}  # noqa: S608
    meta = {str(name): str(value) for name, value in db.execute("SELECT name, value FROM reg_meta ORDER BY name")}
    clients = dict(
        db.execute("SELECT agent_id, count(DISTINCT taxpayer_id) FROM reg_links WHERE end_date IS NULL GROUP BY 1")
    )
    agents = [
        {"id": agent_id, "tan": tan, "abn": abn_, "name": name, "kind": kind, "clients": int(clients.get(agent_id, 0))}
        for agent_id, tan, abn_, name, kind in db.execute("SELECT id, tan, abn, name, kind FROM reg_agents ORDER BY id")
    ]
    return {"counts": counts, "meta": meta, "agents": agents}


def generate_from_json(db: sqlite3.Connection, value: object, *, today: date | None = None) -> dict[str, Any]:
    """Regenerate from a decoded JSON body: ``{"seed": 1, "taxpayers": 3000, "today": "2026-11-30", "agents": [{"tan":
    ..., "abn": ..., "name": ..., "kind": "TAX", "clients": 50, "letters_per_client": 4}]}`` (every key optional).

    Raises ValueError (before writing anything) when the body is malformed; returns the counts and the seconds taken.
    The body's ``today`` wins over the ``today`` argument (the sandbox's business date), which wins over the clock.
    """
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(value) - {"seed", "taxpayers", "agents", "today"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    seed = _integer(value.get("seed", 1), "seed")
    size = _integer(value.get("taxpayers", 3000), "taxpayers")
    if value.get("today") is not None:
        if not isinstance(value["today"], str):
            raise ValueError("today must be a YYYY-MM-DD string")
        today = date.fromisoformat(value["today"])
    raw_agents = value.get("agents", [])
    if not isinstance(raw_agents, list):
        raise ValueError("agents must be a list")
    specs = []
    for raw in raw_agents:
        if not isinstance(raw, dict) or not {"tan", "abn"} <= set(raw):
            raise ValueError("each agent needs at least a tan and an abn")
        unknown = set(raw) - {"tan", "abn", "name", "kind", "clients", "letters_per_client"}
        if unknown:
            raise ValueError(f"unknown agent keys: {', '.join(sorted(unknown))}")
        tan, number = str(raw["tan"]), str(raw["abn"])
        if not stdnum_abn.is_valid(number):
            raise ValueError(f"agent {tan}: {number!r} is not a valid ABN")
        letters = raw.get("letters_per_client", 4.0)
        if isinstance(letters, bool) or not isinstance(letters, int | float):
            raise ValueError("letters_per_client must be a number")
        specs.append(
            AgentSpec(
                tan=tan,
                abn=number,
                name=str(raw.get("name") or f"Agent {tan}"),
                kind=str(raw.get("kind", "TAX")),
                clients=_integer(raw.get("clients", 0), "clients"),
                letters_per_client=float(letters),
            )
        )
    _check_specs(specs)
    started = time.monotonic()
    counts = generate(db, seed=seed, taxpayers=size, agents=specs, today=today)
    return {"counts": counts, "seconds": round(time.monotonic() - started, 3)}


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value
