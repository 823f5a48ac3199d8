"""docker-compose's health check of `web` passes in production: its probe by address over plain HTTP used to get a
400 (DisallowedHost), and with an allowed Host a 301 to https, so a healthy web process was reported unhealthy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.test import Client as HttpClient
from django.test import override_settings

BASE_DIR = Path(settings.BASE_DIR)
PRODUCTION = {"DEBUG": False, "SECURE_SSL_REDIRECT": True, "ALLOWED_HOSTS": ["portal.example.com"]}


@pytest.mark.django_db
def test_the_probe_passes_with_production_settings() -> None:
    with override_settings(**PRODUCTION):
        http = HttpClient()  # its handler, and so every middleware, is built under these settings
        probe = http.get("/healthz", HTTP_HOST="127.0.0.1:8000")
        assert (probe.status_code, probe.content) == (200, b"ok")
        assert "Set-Cookie" not in probe.headers
        # Everything else still has the host check and the redirect to https.
        assert http.get("/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400
        redirect = http.get("/login/", HTTP_HOST="portal.example.com")
        assert redirect.status_code == 301 and redirect["Location"].startswith("https://")


def _compose_web_probe() -> list[str]:
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    test: list[str] = compose["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return test[1:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.django_db(transaction=True)
def test_the_compose_probe_passes_against_gunicorn_in_production(tmp_path: Path) -> None:
    """gunicorn as docker-compose runs `web`, with its production environment (DEBUG off, the TLS proxy's settings,
    secrets from files), on the test database; then the compose file's probe command, run as it is written, with
    only the port changed to the one this test's gunicorn got (8000 may be taken on this machine)."""
    port = _free_port()
    secrets = {
        "DJANGO_SECRET_KEY": "x" * 50,
        "TFN_ENCRYPTION_KEYS": settings.TFN_ENCRYPTION_KEYS[0],
        "TFN_HASH_KEY": "health-test-hash-key",
        "CREDENTIAL_ENCRYPTION_KEYS": settings.CREDENTIAL_ENCRYPTION_KEYS[0],
        "AUDIT_CHAIN_KEYS": "1:health-test-audit-key",
    }
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    for name, value in secrets.items():
        (tmp_path / name).write_text(value)
        env[f"{name}_FILE"] = str(tmp_path / name)
        env.pop(name, None)
    test_db = settings.DATABASES["default"]["NAME"]
    env.update(
        DATABASE_URL=urlsplit(os.environ.get("DATABASE_URL", "postgres:///"))._replace(path=f"/{test_db}").geturl(),
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://portal.example.com",
        DJANGO_BEHIND_TLS_PROXY="1",
        TRUSTED_PROXY_COUNT="1",
        ATO_SANDBOX="0",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        probe = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in _compose_web_probe()]
        assert probe[0] == "python"
        probe[0] = sys.executable
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run(probe, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=20)
            if result.returncode == 0 or time.monotonic() > deadline or web.poll() is not None:
                break
            if "Connection refused" not in result.stderr:
                break  # gunicorn answered, and the answer was a failure
            time.sleep(0.3)
        assert result.returncode == 0, result.stderr[-2000:]
    finally:
        web.terminate()
        output = web.communicate(timeout=10)[0].decode(errors="replace")
    assert "Booting worker" in output, output[-2000:]
