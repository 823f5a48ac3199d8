"""CSV import of 50,000 clients through the real path: `import_upload` (decode, count, store the file, audit),
`import_start` (audit, enqueue on commit) and a real RQ worker (SimpleWorker, burst) on the `default` queue
running `import_run`. Goal (issue): <= 30 s end to end. Fails unless every row became a client.

Environment: BENCH_CLIENTS (50000), BENCH_KEEP_DB=1 to keep the portal_bench database, BENCH_ENFORCE_GOALS=1 to exit
non-zero on a missed goal, BENCH_PROFILE=path to write a cProfile of the worker phase there."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Figures, bench_database, make_practice_admin, note

ROWS = int(os.environ.get("BENCH_CLIENTS", "50000"))
PROFILE = os.environ.get("BENCH_PROFILE", "")
GOAL_SECONDS = 30.0


def run_worker_burst() -> None:
    import django_rq
    from rq import SimpleWorker

    queue = django_rq.get_queue("default")
    # SimpleWorker runs the job in this process (no fork); burst stops once the queue is empty.
    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def main() -> int:
    figures = Figures()
    with bench_database():
        from clients.models import Client, ImportJob, ImportStatus
        from clients.services import import_start, import_upload
        from clients.testdata import make_client_rows, rows_to_csv

        practice, user, _device = make_practice_admin()
        started = time.perf_counter()
        raw = rows_to_csv(make_client_rows(ROWS, seed=20261)).encode()
        note(f"CSV of {ROWS:,} rows, {len(raw) / 1e6:.1f} MB, generated in {time.perf_counter() - started:.1f} s")

        t0 = time.perf_counter()
        job = import_upload(user=user, filename="bench-clients.csv", raw=raw)
        t1 = time.perf_counter()
        import_start(user=user, job=job)
        t2 = time.perf_counter()
        if PROFILE:
            import cProfile

            profiler = cProfile.Profile()
            profiler.runcall(run_worker_burst)
            profiler.dump_stats(PROFILE)
            note(f"worker profile written to {PROFILE}")
        else:
            run_worker_burst()
        t3 = time.perf_counter()

        job = ImportJob.objects.get(pk=job.pk)
        count = Client.objects.filter(practice=practice).count()
        note(
            f"upload {t1 - t0:.2f} s, start {t2 - t1:.2f} s, worker {t3 - t2:.2f} s; job {job.status}, "
            f"created {job.created_count:,}, row errors {job.error_count:,}, clients in the register {count:,}"
        )
        if job.status != ImportStatus.DONE or job.created_count != ROWS or count != ROWS or job.error_count:
            print(
                f"FAILED: expected {ROWS:,} clients imported without errors; job {job.status} ({job.failure!r}), "
                f"created {job.created_count:,}, errors {job.error_count:,}, register {count:,}",
                file=sys.stderr,
            )
            return 1
        total = t3 - t0
        figures.goal(f"CSV import of {ROWS:,} clients <= {GOAL_SECONDS:.0f} s ({total:.1f} s)", total <= GOAL_SECONDS)
        figures.add("csv_import_total", total, "s", 2)
        figures.add("csv_import_upload", t1 - t0, "s", 2)
        figures.add("csv_import_worker", t3 - t2, "s", 2)
        figures.add("csv_import_rows_per_s", ROWS / total, "rows/s")
    return figures.emit()


if __name__ == "__main__":
    sys.exit(main())
