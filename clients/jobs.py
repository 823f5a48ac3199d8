"""RQ jobs: thin, primary keys only, each calls a service."""

from __future__ import annotations

from typing import Any

from clients import services


def run_import(job_id: int) -> None:
    services.import_run(job_id=job_id)


def run_import_failed(job: Any, connection: Any, exc_type: type, value: BaseException, traceback: Any) -> None:
    services.import_mark_failed(
        job.args[0],
        run_token=job.meta.get("run_token"),
        message=f"The import stopped unexpectedly ({exc_type.__name__}). Rows imported so far are kept; "
        "press Resume to continue from where it stopped.",
    )


def sweep_stalled_imports() -> int:
    return services.import_sweep_stalled()


def expire_abandoned_imports() -> int:
    return services.import_expire_abandoned()
