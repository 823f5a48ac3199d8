"""CSV import of 50,000 clients through the real path: `import_upload` (decode, count, store the file, audit),
`import_start` (audit, enqueue on commit) and a real RQ worker (SimpleWorker, burst) on the `default` queue
running `import_run`. Goal (issue): <= 30 s end to end. Fails unless every row became a client.

Printed beside the reference of the same run: a raw COPY of the same CSV bytes into a table of text columns, one
per CSV column (the least PostgreSQL can do to take these rows in), and the ratio of the import to it.

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


def raw_copy_seconds(raw: bytes) -> float:
    """The best of three raw COPYs of the file into a table of text columns, created and dropped here."""
    import psycopg
    from psycopg import sql

    from bench._common import BENCH_DATABASE_URL
    from clients.csv_io import COLUMNS

    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(name)) for name in COLUMNS)
    best = float("inf")
    with psycopg.connect(BENCH_DATABASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE bench_raw_copy ({})").format(columns))
        try:
            for _ in range(3):
                conn.execute("TRUNCATE bench_raw_copy")
                started = time.perf_counter()
                with (
                    conn.cursor() as cursor,
                    cursor.copy("COPY bench_raw_copy FROM STDIN (FORMAT csv, HEADER)") as copy,
                ):
                    copy.write(raw)
                best = min(best, time.perf_counter() - started)
            copied = conn.execute("SELECT count(*) FROM bench_raw_copy").fetchone()
            if copied is None or copied[0] != ROWS:
                raise SystemExit(f"the raw COPY took {copied} rows, not {ROWS}")
        finally:
            conn.execute("DROP TABLE bench_raw_copy")
    return best


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
        copy_seconds = raw_copy_seconds(raw)
        figures.add("csv_raw_copy", copy_seconds, "s", 3)
        figures.add("csv_import_to_raw_copy_ratio", total / copy_seconds, "x")
    return figures.emit()


if __name__ == "__main__":
    sys.exit(main())
