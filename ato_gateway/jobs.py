"""RQ jobs of the gateway: thin, primary keys only, each calls a service. One job carries a batch of messages."""

from __future__ import annotations

from rq import get_current_job

from ato_gateway import services


def _worker_name() -> str:
    job = get_current_job()
    return job.id if job is not None else "inline"


def send_batch(ids: list[int]) -> None:
    services.outbox_send_batch(ids, worker=_worker_name())


def pull_responses(practice_id: int) -> int:
    return services.outbox_pull(practice_id, worker=_worker_name())


def sweep() -> int:
    return services.outbox_sweep()
