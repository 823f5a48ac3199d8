"""Thin RQ jobs of the superannuation app: each calls a service."""

from __future__ import annotations

from superannuation import importing, reporting, services


def member_import_run(import_pk: int) -> None:
    importing.member_import_run(import_pk)


def report_build(report_pk: int) -> None:
    """One batch of the report, then the next in a job of its own."""
    if reporting.report_build_step(report_pk):
        reporting.report_enqueue(report_pk)


def reports_resume() -> int:
    """Reports whose building stopped between two batches (a worker killed): built on from their cursor."""
    pending = reporting.reports_unbuilt()
    for pk in pending:
        reporting.report_enqueue(pk)
    return len(pending)


def items_remind_daily() -> int:
    return services.items_remind_daily()
