"""Production settings pass Django's deployment checks, and a missing secret stops start-up loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TFN_", "CREDENTIAL_", "AUDIT_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 20 + Fernet.generate_key().decode(),
    "TFN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "CREDENTIAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "TFN_HASH_KEY": "a-long-random-hash-key-for-tests",
    "AUDIT_CHAIN_KEYS": "1:a-long-random-audit-chain-key-for-tests",
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
}


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_fails_loudly_without_debug():
    env = {k: v for k, v in PRODUCTION.items() if k != "TFN_HASH_KEY"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "TFN_HASH_KEY is not set" in result.stderr


def test_secret_from_a_file(tmp_path):
    secret = tmp_path / "hash_key"
    secret.write_text("from-a-file-secret\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "TFN_HASH_KEY"} | {"TFN_HASH_KEY_FILE": str(secret)}
    result = manage("shell", "-c", "from django.conf import settings; print(settings.TFN_HASH_KEY)", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from-a-file-secret"


def test_audit_chain_keys_from_a_file_newest_first(tmp_path):
    keys = tmp_path / "audit_chain_keys"
    keys.write_text("2:the-new-key,1:the-old-key\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "AUDIT_CHAIN_KEYS"} | {"AUDIT_CHAIN_KEYS_FILE": str(keys)}
    shown = "from django.conf import settings; print(settings.AUDIT_CHAIN_KEY_VERSION, settings.AUDIT_CHAIN_KEYS)"
    result = manage("shell", "-c", shown, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2 {2: b'the-new-key', 1: b'the-old-key'}"
    missing = manage("check", env={k: v for k, v in PRODUCTION.items() if k != "AUDIT_CHAIN_KEYS"})
    assert missing.returncode != 0 and "AUDIT_CHAIN_KEYS is not set" in missing.stderr
    unversioned = manage("check", env=PRODUCTION | {"AUDIT_CHAIN_KEYS": "just-a-key"})
    assert unversioned.returncode != 0 and "AUDIT_CHAIN_KEYS is a list of version:key" in unversioned.stderr


def test_the_database_password_from_a_file(tmp_path):
    """Each database role's password is a Docker secret (docker-compose.yml, docs/database-roles.md)."""
    secret = tmp_path / "db_app_password"
    secret.write_text("the-app-role-password\n")
    env = PRODUCTION | {"DATABASE_URL": "postgres://portal_app@db:5432/portal", "DATABASE_PASSWORD_FILE": str(secret)}
    shown = "from django.conf import settings; d = settings.DATABASES['default']; print(d['USER'], d['PASSWORD'])"
    result = manage("shell", "-c", shown, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "portal_app the-app-role-password"
    missing = manage("check", env=env | {"DATABASE_PASSWORD_FILE": str(tmp_path / "absent")})
    assert missing.returncode != 0 and "DATABASE_PASSWORD_FILE" in missing.stderr


def test_rq_queues_and_commit_mode_are_explicit():
    from django.conf import settings

    assert set(settings.RQ_QUEUES) == {"high", "default", "low"}
    assert settings.RQ["COMMIT_MODE"] == "on_db_commit"


def test_the_stand_in_ato_is_not_installed_in_production():
    """It is a development, demo and test tool: a production process neither installs its app nor offers its
    commands, and the production image does not ship it."""
    show = "from django.conf import settings; print('ato_sandbox' in settings.INSTALLED_APPS)"
    production = manage("shell", "-c", show, env=PRODUCTION)
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip().splitlines()[-1] == "False"
    assert "run_ato_sandbox" not in manage("help", env=PRODUCTION).stdout
    development = manage("shell", "-c", show, env={"DJANGO_DEBUG": "1"})
    assert development.stdout.strip().splitlines()[-1] == "True"
    assert "ato_sandbox" not in (ROOT / "Dockerfile").read_text()
