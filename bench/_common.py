"""Shared plumbing for the benchmarks: a throw-away PostgreSQL database and Redis DB, Django set-up, and the
`name value unit` figures each benchmark prints last.

Each benchmark runs as a script (`.venv/bin/python bench/bench_x.py`), so this module puts the project root on
sys.path before anything imports Django."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = str(ROOT / ".venv" / "bin" / "python")
if not Path(PY).exists():  # pragma: no cover - a checkout whose venv lives elsewhere
    PY = sys.executable

BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres:///portal_bench")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
KEEP_DB = os.environ.get("BENCH_KEEP_DB", "") == "1"
ENFORCE_GOALS = os.environ.get("BENCH_ENFORCE_GOALS", "") == "1"


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for this process's Django and for every child (migrate, gunicorn, workers)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=BENCH_DATABASE_URL,
        REDIS_URL=BENCH_REDIS_URL,
        CACHE_KEY_PREFIX="portal-bench",
        DJANGO_SETTINGS_MODULE="portal.settings",
        # Development secrets; in this project DEBUG also switches static finders and ALLOWED_HOSTS.
        DJANGO_DEBUG="1",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def production_env(**extra: str) -> dict[str, str]:
    """The environment of a server or worker measured as production runs it: DEBUG off (no query log, no debug
    cursor), with the development secrets the benchmark's data was written with passed explicitly, and plain HTTP
    on 127.0.0.1 allowed. Call after Django is set up."""
    from django.conf import settings

    production = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "TFN_ENCRYPTION_KEYS": ",".join(settings.TFN_ENCRYPTION_KEYS),
        "TFN_HASH_KEY": settings.TFN_HASH_KEY,
        "CREDENTIAL_ENCRYPTION_KEYS": ",".join(settings.CREDENTIAL_ENCRYPTION_KEYS),
        "AUDIT_CHAIN_KEYS": ",".join(f"{v}:{k.decode()}" for v, k in settings.AUDIT_CHAIN_KEYS.items()),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_MANIFEST": "0",
        # The software's registration, which production must be given and development defaults.
        "SBR_PRODUCT_ID": settings.SBR_PRODUCT_ID,
        "SBR_BMS_VENDOR": settings.SBR_BMS_VENDOR,
        "SBR_BMS_NAME": settings.SBR_BMS_NAME,
    }
    return bench_env(**{**production, **extra})


def point_at_sandbox(url: str, data_dir: str | Path) -> dict[str, str]:
    """Point this process's gateway at a running stand-in ATO; returns the same settings as environment variables
    for the worker processes a benchmark starts."""
    from django.conf import settings

    ato = {
        "ATO_STS_URL": f"{url}/sts",
        "ATO_EBMS_URL": f"{url}/ebms",
        "ATO_SIGNING_CERT_FILE": f"{data_dir}/ato-signing.pem",
    }
    for name, value in ato.items():
        setattr(settings, name, value)
    return ato


def note(message: str) -> None:
    print(f"# {message}", flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, printed beside a figure measured on this shared machine."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _admin_url() -> tuple[str, str]:
    """(URL of the maintenance database, name of the benchmark database) from BENCH_DATABASE_URL."""
    parts = urlsplit(BENCH_DATABASE_URL)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"BENCH_DATABASE_URL must name a plain database, got {BENCH_DATABASE_URL!r}")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/postgres{query}", name


def _admin_exec(sql: str) -> None:
    import psycopg

    url, _ = _admin_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def drop_database() -> None:
    _, name = _admin_url()
    _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def bench_database() -> Iterator[None]:
    """A fresh, migrated benchmark database and an empty Redis DB; dropped afterwards unless BENCH_KEEP_DB=1."""
    import redis

    os.environ.update(bench_env())
    _, name = _admin_url()
    drop_database()
    _admin_exec(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
    try:
        started = time.perf_counter()
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=bench_env(), check=True)
        note(f"database {name} created and migrated in {time.perf_counter() - started:.1f} s")
        import django

        django.setup()
        yield
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001, S110 - Django may not be set up yet
            pass
        redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
        if KEEP_DB:
            note(f"kept database {name} (BENCH_KEEP_DB=1)")
        else:
            drop_database()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BENCH_PASSWORD = "bench-password-2026-long"


def make_practice_admin(username: str = "benchadmin", password: str = BENCH_PASSWORD) -> tuple:
    """A practice (ABN 53004085616) and its practice admin with a confirmed TOTP device."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from portal.capabilities import Role
    from portal.models import Practice, User

    practice = Practice.objects.create(name="Bench Harbour Tax", abn="53004085616", agent_number="87654321")
    user = User.objects.create_user(
        username=username,
        password=password,
        practice=practice,
        role=Role.PRACTICE_ADMIN,
        first_name="Bench",
        last_name="Admin",
    )
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return practice, user, device


class Figures:
    """Collects `name value unit` lines; printed together, last, by `emit`."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, float, str, int]] = []
        self.missed: list[str] = []

    def add(self, name: str, value: float, unit: str, digits: int = 1) -> None:
        self.lines.append((name, value, unit, digits))

    def goal(self, description: str, met: bool) -> None:
        note(f"goal {'MET' if met else 'MISSED'}: {description}")
        if not met:
            self.missed.append(description)

    def emit(self) -> int:
        for name, value, unit, digits in self.lines:
            print(f"{name} {value:.{digits}f} {unit}", flush=True)
        if self.missed and ENFORCE_GOALS:
            print(f"# {len(self.missed)} goal(s) missed and BENCH_ENFORCE_GOALS=1", file=sys.stderr)
            return 1
        return 0
