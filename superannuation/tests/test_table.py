"""Seed 003's table (CRT Alert 071/2018), row by row through ``classify``, and its two time rules: the 30 days run
from the pull (when the ATO deems the fund aware), and an unmatched response needs action in real-time reporting
only. Pure functions: no database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.utils import timezone

from superannuation.models import (
    MORE_RECENT_CODE,
    NEEDS_ACTION,
    OTHER_HOLDER_CODE,
    Meaning,
    Outcome,
    ReportKind,
    WorkItem,
    classify,
)

VALID = "CMN.ATO.SPRMBRINFO.VALID"
NOT_VALID = "CMN.ATO.SPRMBRINFO.NOT VALID"
FOUNDATION, REALTIME = ReportKind.FOUNDATION, ReportKind.REALTIME


def processed(validation: str, *codes: str) -> Outcome:
    return Outcome(True, validation, codes or ((NOT_VALID,) if validation == "UNMATCHED" else (VALID,)))


def refused(*codes: str) -> Outcome:
    return Outcome(False, None, codes)


@pytest.mark.parametrize(
    ("outcome", "kind", "tfn_given", "meaning", "action"),
    [
        # GEN.OK + VALID: matched, equates to a s299TD notice; no action.
        (processed("MATCHED"), REALTIME, True, Meaning.MATCHED, False),
        (processed("MATCHED"), FOUNDATION, True, Meaning.MATCHED, False),
        # No TFN given and not quoted for super purposes: a simply matched response, not a s299TD notice.
        (processed("MATCHED"), REALTIME, False, Meaning.MATCHED_NO_NOTICE, False),
        # VALID CORRECTEDTFN with a wrong TFN given: s299TA, update the records with the TFN supplied.
        (processed("CORRECTED"), REALTIME, True, Meaning.CORRECTED, True),
        (processed("CORRECTED"), FOUNDATION, True, Meaning.CORRECTED, True),
        # VALID CORRECTEDTFN with no TFN given (quoted for super): s299TC, update the records likewise.
        (processed("PROVIDED"), REALTIME, False, Meaning.PROVIDED, True),
        (processed("PROVIDED"), FOUNDATION, False, Meaning.PROVIDED, True),
        # NOT VALID during the foundation data load: no action required, with or without a TFN.
        (processed("UNMATCHED"), FOUNDATION, True, Meaning.UNMATCHED_FOUNDATION, False),
        (processed("UNMATCHED"), FOUNDATION, False, Meaning.UNMATCHED_FOUNDATION, False),
        # NOT VALID in real time, no TFN given: reasonable steps.
        (processed("UNMATCHED"), REALTIME, False, Meaning.UNMATCHED, True),
        # NOT VALID in real time with a TFN given: a "please resolve" notice.
        (processed("UNMATCHED"), REALTIME, True, Meaning.PLEASE_RESOLVE, True),
        # Failed validation: not processed; correct and resubmit it (and only it).
        (refused("CMN.ATO.SPRMBRINFO.TFN01"), REALTIME, True, Meaning.VALIDATION_ERROR, True),
        (refused("CMN.ATO.SPRMBRINFO.MBR01"), FOUNDATION, True, Meaning.VALIDATION_ERROR, True),
        # 096604: another holder's account, not processed; remediate before resubmitting (foundation too).
        (refused(OTHER_HOLDER_CODE), REALTIME, True, Meaning.OTHER_HOLDER, True),
        (refused(OTHER_HOLDER_CODE), FOUNDATION, False, Meaning.OTHER_HOLDER, True),
        # 099264: a more recent request was already processed.
        (refused(MORE_RECENT_CODE), REALTIME, True, Meaning.MORE_RECENT, True),
    ],
)
def test_each_row_of_the_table(outcome: Outcome, kind: str, tfn_given: bool, meaning: Meaning, action: bool) -> None:
    got = classify(outcome, kind=kind, tfn_given=tfn_given)
    assert got == meaning
    assert (got in NEEDS_ACTION) is action


def test_the_account_holder_code_wins_over_every_other_item() -> None:
    """096604 names what must be remediated first, even beside another validation error."""
    both = refused("CMN.ATO.SPRMBRINFO.TFN01", OTHER_HOLDER_CODE)
    assert classify(both, kind=REALTIME, tfn_given=True) == Meaning.OTHER_HOLDER


def test_the_clock_runs_thirty_days_from_the_day_of_the_pull_in_the_practices_time_zone(settings: Any) -> None:
    assert settings.TIME_ZONE == "Australia/Sydney"
    # 23:30 UTC on 1 March is 10:30 on 2 March in Sydney: the fund became aware on the 2nd.
    pulled = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert WorkItem.due_from(pulled) == date(2026, 4, 1)
    assert WorkItem.due_from(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == date(2026, 3, 31)


def test_days_left_counts_down_to_the_due_date_and_below_zero_when_overdue() -> None:
    item = WorkItem(due_on=date(2026, 4, 1), aware_at=timezone.now())
    assert item.days_left(date(2026, 3, 25)) == 7
    assert item.days_left(date(2026, 4, 1)) == 0
    assert item.days_left(date(2026, 4, 3)) == -2


def test_only_a_remediated_096604_may_be_resubmitted() -> None:
    assert not WorkItem(meaning=Meaning.OTHER_HOLDER).may_resubmit
    assert WorkItem(meaning=Meaning.OTHER_HOLDER, remediation=WorkItem.Remediation.IDENTITY_CONFIRMED).may_resubmit
    assert WorkItem(meaning=Meaning.VALIDATION_ERROR).may_resubmit
