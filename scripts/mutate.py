"""`make mutate`: mutation testing (mutmut) of the modules a practice's safety rests on, each against its own fast
tests only. Prints each module's score (killed out of the mutants tried) and every surviving mutant's diff.

    make mutate                         # every module below
    make mutate MODULES="tfn audit"     # some of them
    scripts/mutate.py --list            # the modules and their tests

Each module is mutated in its own copy of the committed tree under var/mutate/<name>/ (mutmut writes its mutants/
there, afresh unless --resume), so a run never touches the files people are editing, nor measures their edits in
progress. `--with tests/test_x.py` takes that file from the work tree instead: a test not yet committed. mutmut
runs the tests in-process on one child at a time: the tests share one PostgreSQL test database and one Redis
database, which two children would trample. Set DATABASE_URL and REDIS_URL to keep a run apart from other runs
(defaults: portal_mutate, Redis DB 7).

The goal is at least 90% killed in every module. A new app adds its safety-critical modules to MODULES (the
four-eyes approval, the 30-day clock, a letter's owner in a restricted group, the due date read from a letter)."""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "mutate"
PACKAGES = [
    "portal",
    "clients",
    "relationships",
    "demographics",
    "communications",
    "superannuation",
    "ato_gateway",
    "ato_sandbox",
]
GOAL = 0.90


@dataclass(frozen=True)
class Module:
    files: list[str]  # what is mutated (mutmut 3 mutates the functions and methods in them)
    tests: list[str]  # pytest selections: the module's fast tests, no stand-in ATO process where avoidable
    functions: list[str] = field(default_factory=list)  # only these functions ("Class.method" for a method), if given
    slow: bool = False  # the tests start the stand-in ATO: minutes per module rather than seconds


MODULES: dict[str, Module] = {
    # mutmut 3 mutates functions only: of capabilities.py that leaves the labels, which it passes by (an enum's
    # properties), not the roles' table, which test_tenancy_units.py pins by hand. capability_required runs when the
    # URLconf is imported, before any mutant is switched on, so only tests that decorate a view themselves see one.
    "tenancy": Module(
        ["portal/capabilities.py", "portal/decorators.py"],
        ["tests/test_tenancy_units.py", "tests/test_tenancy.py", "tests/test_access_guards.py"],
    ),
    # The one scoping rule of each kind of row (its practice, narrowed to a restricted member's groups) and the
    # capability check every view's decorator asks: the tenancy helpers that live beside their models.
    "scoping": Module(
        [
            "portal/models.py",
            "clients/models.py",
            "communications/models.py",
            "demographics/models.py",
            "superannuation/models.py",
            "relationships/models.py",
        ],
        [
            "tests/test_scoping_units.py",
            "tests/test_tenancy_units.py",
            "tests/test_restricted_staff.py",
            "tests/test_tenancy.py",
            "tests/test_import_privacy.py",
            "communications/tests/test_inbox.py",
            "superannuation/tests/test_services.py",
            "demographics/tests/test_bank_controls.py",
        ],
        functions=[
            "User.has_capability",
            "ClientQuerySet.visible_to",
            "ClientGroupQuerySet.visible_to",
            "ClientGroupQuerySet.choices_for",
            "ImportJobQuerySet.visible_to",
            "LetterQuerySet.visible_to",
            "BankChangeQuerySet.visible_to",
            "SuperFundQuerySet.visible_to",
            "MemberQuerySet.visible_to",
            "BatchQuerySet.visible_to",
            "TransactionQuerySet.visible_to",
            "WorkItemQuerySet.visible_to",
            "AtoRequestQuerySet.visible_to",
        ],
    ),
    "mfa": Module(
        ["portal/middleware.py", "portal/session_user.py"],
        [
            "tests/test_auth.py",
            "tests/test_session_user.py",
            "tests/test_session_limits.py",
            "tests/test_access_guards.py",
        ],
    ),
    "tfn": Module(
        ["clients/tfn.py", "portal/logging.py"],
        [
            "tests/test_tfn_guards.py",
            "tests/test_tfn_privacy.py",
            "tests/test_sealing.py",
            "tests/test_sealing_rotation.py",
            "tests/test_log_handlers.py",
            "tests/test_redaction_gaps.py",
        ],
    ),
    # Apart from "tfn": its own fast tests reach rotation, so no mutant waits on the stand-in ATO.
    "sealing": Module(["portal/sealing.py"], ["tests/test_sealing.py"]),
    "audit": Module(
        ["portal/audit.py"],
        ["tests/test_audit.py", "tests/test_audit_chain_links.py", "tests/test_audit_chain_keyed.py"],
    ),
    # Driven directly, no stand-in ATO: rows set up by hand, replies built and signed with the wire's server half.
    "outbox": Module(
        ["ato_gateway/services/sending.py", "ato_gateway/services/operations.py"],
        ["tests/test_outbox_units.py"],
        functions=["_claim", "_decide", "_failure", "_record", "_read_reply", "outbox_resend"],
    ),
    "wire": Module(
        ["ato_gateway/wire/wsse.py", "ato_gateway/wire/xmlsafe.py"],
        [
            "ato_gateway/wire/tests/test_signatures.py",
            "ato_gateway/wire/tests/test_xmlsafe.py",
            "ato_gateway/wire/tests/test_layers.py",
            "ato_gateway/wire/tests/test_wsse_checks.py",
        ],
    ),
    # What the stand-in ATO checks on every message, in its WSGI application called in-process (no server, whose
    # process would not see a mutant): not the faults it is told to make, its pulls, nor its control pages.
    "front-door": Module(
        ["ato_sandbox/app.py"],
        ["ato_sandbox/tests/test_front_door.py"],
        functions=[
            "operator_allowed",
            "SandboxApp.__call__",
            "SandboxApp._send",
            "SandboxApp._read_body",
            "SandboxApp._sts",
            "SandboxApp._trust",
            "SandboxApp._decide_trust",
            "SandboxApp._ebms",
            "SandboxApp._needs_no_storage",
            "SandboxApp._apply",
            "SandboxApp._ping",
            "SandboxApp._business_payloads",
            "_withhold_numbers",
            "_guess_message_id",
        ],
    ),
    # The answers built by hand and handed to the handler: the flows through the stand-in ATO took minutes a mutant.
    "relationships-answers": Module(
        ["relationships/services.py"],
        ["tests/test_relationships_answers.py"],
        functions=["on_answer", "answer_apply", "_apply_links", "_apply_removal", "_history"],
    ),
    # A MAAS batch's answer: each transaction's outcome and meaning, the member's TFN validation, the work items and
    # their clock, the batch and report settled. Answers built by hand and settled as the gateway settles them.
    "super-answers": Module(
        ["superannuation/reporting.py"],
        ["superannuation/tests/test_batch_answers.py"],
        functions=[
            "on_batch_answer",
            "question_receipt_at",
            "_items",
            "_apply",
            "_resolve_resubmitted",
            "_finish_if_done",
        ],
    ),
    # Communications' answers: a page of the CC List sync (its stop and finish, not the storing of its letters), a CC
    # Get document, a COMMPREF Get and a preference change's Validate and Submit (not the letters following them).
    "communications-answers": Module(
        ["communications/services.py", "communications/preferences.py"],
        ["communications/tests/test_answers.py"],
        functions=[
            "on_list_page",
            "_failure_words",
            "_stop",
            "_finish",
            "on_document",
            "_document_failed",
            "on_preference",
            "preference_keep",
            "on_preference_change",
        ],
    ),
    # The four-eyes approval of a bank account change: the call-back, the second member's code, the expiry. Its
    # fast tests call the steps on rows set up by hand; test_bank.py's walk through the stand-in ATO is not needed.
    "four-eyes": Module(
        ["demographics/bank.py"],
        ["demographics/tests/test_bank_controls.py"],
        functions=["bank_change_record_callback", "bank_change_approve", "_expire_if_due"],
    ),
    # Demographics' answer handlers (those registered with api.register) and what they do once the answer is in
    # (the client told of a new bank account, a bulk change's checked rows submitted by a job), handed answers
    # built by hand.
    "demographics-answers": Module(
        [
            "demographics/services.py",
            "demographics/drift.py",
            "demographics/bank.py",
            "demographics/addresses.py",
            "demographics/profile.py",
        ],
        [
            "demographics/tests/test_answer_handlers.py",
            "demographics/tests/test_delivered_twice.py",
            "demographics/tests/test_drift_answers.py",
        ],
        functions=[
            "on_snapshot",
            "snapshots_answered",  # the purpose's many: a batch's answers at once
            "snapshot_facts",
            "_at_level",
            "on_bank_answer",
            "_notify",
            "on_address_answer",
            "address_bulk_submit_enqueue",
            "on_profile_answer",
        ],
    ),
    # A letter's due date (read from its text, else its kind's rule) and its owner (who looks after its client).
    "letters": Module(
        ["communications/services.py"],
        ["communications/tests/test_letter_rules.py"],
        functions=["due_by_rule", "due_in_text", "_looked_after_by", "_assign_owners"],
    ),
    # Seed 003's table and the 30-day clock: what a fund must act on, and by when.
    "super": Module(
        ["superannuation/models.py"],
        ["superannuation/tests/test_table.py"],
        functions=["classify", "remediation_due"],
    ),
}


def copy_tree(target: Path, extra: list[str]) -> None:
    """The committed tree (HEAD), over what an earlier run left, keeping mutmut's mutants/ and its results; then
    the work tree's copies of `extra`. Not the whole work tree: other people's edits in progress there (a model
    changed before its migration is written) would fail the baseline, or be measured as if they were done."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=REPO, check=True, capture_output=True)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    for name in extra:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def configure(target: Path, module: Module) -> None:
    """mutmut 3 reads [tool.mutmut] from pyproject.toml: one section per copy, for this module."""
    pyproject = target / "pyproject.toml"
    text = re.sub(r"\n\[tool\.mutmut\].*?(?=\n\[|\Z)", "", pyproject.read_text(), flags=re.S)
    text += (
        "\n[tool.mutmut]\n"
        f"source_paths = {toml_list(PACKAGES)}\n"
        f"only_mutate = {toml_list(module.files)}\n"
        f"also_copy = {toml_list(['templates', 'static', 'manage.py', 'docs'])}\n"
        # Every mutant's run reuses the test database that the baseline run (below) made afresh: creating it each
        # time cost more than the tests, and under load pushed mutants past mutmut's timeout.
        f"pytest_add_cli_args = {toml_list(['-q', '-p', 'no:cacheprovider', '--reuse-db'])}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(module.tests)}\n"
    )
    pyproject.write_text(text)


# The project is installed editable: its import finder would resolve a module missing from the copy to the work
# tree. Dropped before mutmut or pytest starts, so that every import comes from the copy under test.
DROP_EDITABLE_FINDER = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')"
    " and not type(f).__module__.startswith('__editable__')]\n"
)


def baseline(target: Path, module: Module) -> None:
    """The module's tests, unmutated, on a freshly made test database (mutmut's runs then reuse it): they must
    pass before any mutant means anything."""
    bootstrap = DROP_EDITABLE_FINDER + "import pytest\nsys.exit(pytest.main(sys.argv[1:]))\n"
    args = ["-q", "-x", "-p", "no:cacheprovider", "--create-db", *module.tests]
    subprocess.run([sys.executable, "-c", bootstrap, *args], cwd=target, check=True)


def mutmut(target: Path, *args: str, capture: bool = False) -> str:
    bootstrap = DROP_EDITABLE_FINDER + "sys.argv = ['mutmut', *sys.argv[1:]]\nfrom mutmut.__main__ import cli\ncli()\n"
    result = subprocess.run(
        [sys.executable, "-c", bootstrap, *args],
        cwd=target,
        check=not capture,
        capture_output=capture,
        text=True,
    )
    return result.stdout if capture else ""


def mutant_patterns(module: Module) -> list[str]:
    """mutmut names a mutant <module path>.x_<function>__mutmut_<n>, and a method's (given as "Class.method")
    <module path>.xǁClassǁmethod__mutmut_<n>."""
    patterns = []
    for path in module.files:
        dotted = path.removesuffix(".py").replace("/", ".")
        for name in module.functions:
            owner, _, method = name.rpartition(".")
            patterns.append(f"{dotted}.xǁ{owner}ǁ{method}__mutmut_*" if owner else f"{dotted}.x_{name}__mutmut_*")
    return patterns


def report(name: str, target: Path) -> tuple[int, int]:
    lines = mutmut(target, "results", "--all", "true", capture=True).splitlines()
    statuses = [line.strip().rsplit(": ", 1) for line in lines if "__mutmut_" in line]
    wanted = [p.replace("*", "") for p in mutant_patterns(MODULES[name])]
    if wanted:
        statuses = [s for s in statuses if any(s[0].startswith(w) for w in wanted)]
    tried = [s for s in statuses if s[1] not in ("not checked", "skipped")]
    # A timeout is a kill (the mutant hung the tests); "no tests" is a survivor: nothing here looks at that code.
    killed = [s for s in tried if s[1] in ("killed", "timeout", "caught by type check")]
    survivors = [s for s in tried if s not in killed]
    score = len(killed) / len(tried) if tried else 0.0
    mark = "ok" if score >= GOAL else f"below the goal of {GOAL:.0%}"
    print(f"\n== {name}: {len(killed)} of {len(tried)} mutants killed, {score:.1%} ({mark})")
    for path in MODULES[name].files:
        dotted = path.removesuffix(".py").replace("/", ".") + ".x"
        in_file = [s for s in tried if s[0].startswith(dotted)]
        file_killed = len([s for s in in_file if s in killed])
        if in_file:
            print(f"   {path}: {file_killed} of {len(in_file)}, {file_killed / len(in_file):.1%}")
    if survivors:
        # One process for every diff: `mutmut show` per mutant paid mutmut's start-up each time.
        shows = (
            "from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant\n"
            "for line in sys.stdin.read().split():\n"
            "    name, status = line.split('=', 1)\n"
            "    print(f'-- {status}: {name}')\n"
            "    print(get_diff_for_mutant(name, path=find_mutant(name).path).strip())\n"
        )
        listing = " ".join(f"{mutant}={status.replace(' ', '_')}" for mutant, status in survivors)
        subprocess.run([sys.executable, "-c", DROP_EDITABLE_FINDER + shows], cwd=target, input=listing, text=True)
    return len(killed), len(tried)


def survivors(target: Path) -> list[str]:
    lines = mutmut(target, "results", "--all", "true", capture=True).splitlines()
    statuses = [line.strip().rsplit(": ", 1) for line in lines if "__mutmut_" in line]
    return [mutant for mutant, status in statuses if status in ("survived", "no tests")]


def run(name: str, *, resume: bool, extra: list[str], again: bool = False) -> tuple[int, int]:
    module = MODULES[name]
    target = WORK / name
    print(f"== mutating {name}: {', '.join(module.files)} against {', '.join(module.tests)}", flush=True)
    # Only the last run's survivors, against the tests as they are now: the mutants killed then are killed still,
    # since tests are only added, and a module's whole run takes up to half an hour.
    retry = survivors(target) if again and (target / "mutants").is_dir() else []
    if not resume and not retry:
        # mutmut retries only mutants of functions that changed, not those that changed tests may now kill.
        shutil.rmtree(target, ignore_errors=True)
    copy_tree(target, extra)
    configure(target, module)
    baseline(target, module)
    mutmut(target, "run", "--max-children", "1", *(retry or mutant_patterns(module)))
    return report(name, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of: {', '.join(MODULES)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--report-only", action="store_true", help="print the results of the last run")
    parser.add_argument(
        "--resume", action="store_true", help="keep the last run's results (only changed functions are retried)"
    )
    parser.add_argument(
        "--with",
        dest="extra",
        action="append",
        default=[],
        metavar="PATH",
        help="a file of the work tree to use instead of the committed one (a test being written); repeatable",
    )
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="retry only the last run's survivors, against the tests as they are now",
    )
    options = parser.parse_args()
    if options.list:
        for name, module in MODULES.items():
            slow = " (starts the stand-in ATO: slow)" if module.slow else ""
            print(f"{name}: {' '.join(module.files)} <- {' '.join(module.tests)}{slow}")
        return 0
    unknown = [m for m in options.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {', '.join(MODULES)}")
    os.environ.setdefault("DATABASE_URL", "postgres:///portal_mutate")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
    os.environ.setdefault("CACHE_KEY_PREFIX", "portal-mutate")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    names = options.modules or list(MODULES)
    if options.report_only:
        totals = [report(name, WORK / name) for name in names]
    else:
        totals = [run(name, resume=options.resume, extra=options.extra, again=options.survivors) for name in names]
    killed, tried = sum(k for k, _ in totals), sum(t for _, t in totals)
    print(f"\n== all: {killed} of {tried} mutants killed, {killed / tried if tried else 0:.1%} (goal {GOAL:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
