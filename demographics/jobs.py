"""Thin RQ jobs over the drift watch (demographics/drift.py): each step asks one chunk and queues the next."""

from __future__ import annotations

from ato_gateway import api
from demographics import addresses, drift


def drift_watch(run_id: int) -> None:
    if drift.drift_watch_step(run_id):
        drift.drift_watch_enqueue(run_id)


def drift_watch_nightly() -> None:
    for practice in api.practices_able_to_ask():
        run = drift.drift_watch_start(practice=practice)
        drift.drift_watch_enqueue(run.pk)


def address_bulk_submit(bulk_id: int) -> None:
    addresses.address_bulk_submit(bulk_id=bulk_id)
