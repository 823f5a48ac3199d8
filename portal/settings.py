"""The one settings module. Every value that differs between a laptop, CI and production comes from the
environment; secrets may instead come from a file named by ``<NAME>_FILE`` (Docker and Kubernetes secrets)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)


def env_secret(name: str, dev_default: str) -> str:
    """A secret from ``NAME`` or the file at ``NAME_FILE``. Without DEBUG a missing secret stops start-up:
    a production deployment that silently ran on a development key would encrypt TFNs with a public key."""
    value = os.environ.get(name, "")
    path = os.environ.get(f"{name}_FILE", "")
    if not value and path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} is not set (nor {name}_FILE). It is required when DJANGO_DEBUG is off.")


SECRET_KEY = env_secret("DJANGO_SECRET_KEY", "dev-only-secret-key-not-for-production-use-0123456789abcdef")
# Fernet keys (urlsafe base64, 32 bytes), newest first. Old keys stay listed until `rotate_tfn_key` has run.
TFN_ENCRYPTION_KEYS = [
    k.strip()
    for k in env_secret("TFN_ENCRYPTION_KEYS", "ZGV2LW9ubHktdGZuLWtleS1ub3QtZm9yLXByb2QtMDA=").split(",")
    if k.strip()
]
# Fernet keys for machine credentials' private keys at rest, newest first (rotate as for TFNs).
CREDENTIAL_ENCRYPTION_KEYS = [
    k.strip()
    for k in env_secret("CREDENTIAL_ENCRYPTION_KEYS", "ZGV2LW9ubHktY3JlZGVudGlhbC1rZXktbm90LXByb2Q=").split(",")
    if k.strip()
]
# A separate key for the keyed hash that finds a client by TFN without decrypting every row.
TFN_HASH_KEY = env_secret("TFN_HASH_KEY", "dev-only-tfn-hash-key")


def _versioned_keys(name: str, raw: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for entry in (item.strip() for item in raw.split(",")):
        version, sep, key = entry.partition(":")
        if not entry:
            continue
        if not sep or not version.isdigit() or int(version) < 1 or not key or int(version) in keys:
            raise ImproperlyConfigured(f"{name} is a list of version:key, versions 1 and up, each once.")
        keys[int(version)] = key.encode()
    if not keys:
        raise ImproperlyConfigured(f"{name} names no key.")
    return keys


# The keys of the audit trail's HMAC chain, "version:key", newest first. They live outside the database, so that
# whoever can write to the database still cannot forge a chain that verifies. Each event records the version that
# chained it: to rotate, put a new version first and keep the old ones listed as long as their events are kept.
AUDIT_CHAIN_KEYS = _versioned_keys(
    "AUDIT_CHAIN_KEYS", env_secret("AUDIT_CHAIN_KEYS", "1:dev-only-audit-chain-key-not-for-production")
)
AUDIT_CHAIN_KEY_VERSION = next(iter(AUDIT_CHAIN_KEYS))

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "django_htmx",
    "django_rq",
    "axes",
    "portal",
    "clients",
    "relationships",
    "demographics",
    "communications",
    "superannuation",
    "ato_gateway",
]
# The stand-in ATO is for development, demos and tests (its own process; the portal reaches it only over HTTP). Its
# app is installed only there, for its management commands: production neither has it nor ships it (Dockerfile).
if env_bool("ATO_SANDBOX", DEBUG):
    INSTALLED_APPS.append("ato_sandbox")

MIDDLEWARE = [
    # First: the health probe comes by address over plain HTTP, before the host check and the https redirect.
    "portal.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Where each request came from, for the audit trail's events that services record without the request.
    "portal.audit.AuditOriginMiddleware",
    # django-otp's OTPMiddleware reading the user, practice and device in one query (portal/middleware.py says why).
    "portal.middleware.OTPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.SessionIdleTimeoutMiddleware",
    "portal.middleware.RequireMFAMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees the outcome of authentication inside the views (django-axes' documented order).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    }
]

# The username is unique within its practice only (portal.User's constraint); portal.backends.PracticeBackend, which
# signs in by practice code and username, is why that is safe.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# The database password may come from a file, like the other secrets (docker-compose.yml gives each role its own).
_DATABASE_PASSWORD_FILE = env_str("DATABASE_PASSWORD_FILE")
if _DATABASE_PASSWORD_FILE:
    try:
        DATABASES["default"]["PASSWORD"] = Path(_DATABASE_PASSWORD_FILE).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"DATABASE_PASSWORD_FILE={_DATABASE_PASSWORD_FILE} cannot be read: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend with a health check that costs no round trip (portal/db/postgresql/base.py says why).
    DATABASES["default"]["ENGINE"] = "portal.db.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the worker write while the web server reads; the timeout rides out short write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The client list's covering index has included columns, which SQLite ignores (it stays a plain index).
    SILENCED_SYSTEM_CHECKS.append("models.W040")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The project's own Redis database when REDIS_URL is not given (REDIS_DB, 0-15): scripts/run-dev picks one per
# checkout, so that two of them, or another app on the same Redis, never share queues or cache.
REDIS_URL = env_str("REDIS_URL", f"redis://127.0.0.1:6379/{env_int('REDIS_DB', 0)}")
# Any: the entries mix strings and the OPTIONS dict, and readers (tests/browser_support.py) take KEY_PREFIX as text.
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        # Django's Redis backend, reusing its redis.Redis client instead of building one per call (portal/cache.py).
        "BACKEND": "portal.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "practice-portal"),
        # A Redis that drops packets must not hold a page for long: the cache then answers as a miss.
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
    }
}

RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (("high", 300), ("default", 1800), ("low", 3600))
}
# Jobs are pushed only when the transaction that wrote their rows commits: a worker must never pick up a
# job whose row it cannot yet see, and a rolled-back request must enqueue nothing.
# Jobs run in the worker process, not a forked child per job (portal/worker.py says why).
# Queues are named RQ_QUEUE_PREFIX + their key here in Redis (portal/queues.py says why).
RQ = {
    "COMMIT_MODE": "on_db_commit",
    "WORKER_CLASS": "portal.worker.Worker",
    "QUEUE_CLASS": "portal.queues.PrefixedQueue",
}
RQ_QUEUE_PREFIX = env_str("RQ_QUEUE_PREFIX", "practice-portal:")

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Practice code, username and password: usernames are unique only within a practice. In place of Django's
    # ModelBackend, whose look-up by username alone would find several people.
    "portal.backends.PracticeBackend",
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed logins: five failures for one username from one address lock that pair for 15 minutes (and see
# LOGIN_ADDRESS_FAILURE_LIMIT below for one address across usernames).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_USERNAME_CALLABLE = "portal.backends.axes_username"
# How many reverse proxies of our own stand in front of the application, each appending the address it was reached
# from to X-Forwarded-For (docker-compose.yml's TLS proxy is one). The client's address is the one the outermost of
# them saw; anything further left was written by the client and is not believed. 0: no proxy, REMOTE_ADDR is the
# client. Sign-in throttling (axes) and the audit trail both take the address from portal.models.client_ip.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "portal.models.client_ip"
# Password spraying: this many failed sign-ins from one address, whatever the usernames, pause sign-in from it for
# AXES_COOLOFF_TIME (axes has one failure limit for every lockout parameter, and this one must be higher).
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 30)

OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Practice Portal")

# Passkeys (WebAuthn), as a second factor beside the authenticator app; never instead of the password
# (portal/passkeys.py). The relying party ID is the site's host name: a passkey made for it works only there, so it
# must not change once staff have passkeys. A browser offers passkeys only on https or on localhost, never on an IP
# address: `make run` is at http://127.0.0.1:8000, so open http://localhost:8000 to try them.
# Without settings of their own, production takes the first of DJANGO_ALLOWED_HOSTS, served over https.
_SITE_HOSTS = [h for h in ALLOWED_HOSTS if h not in ("*", "testserver") and not h.startswith(".")] or ["localhost"]
OTP_WEBAUTHN_RP_ID = env_str("OTP_WEBAUTHN_RP_ID", "localhost" if DEBUG else _SITE_HOSTS[0])
OTP_WEBAUTHN_RP_NAME = env_str("OTP_WEBAUTHN_RP_NAME", "Practice Portal")
# Every origin (scheme, host and port) that pages asking for a passkey are served from.
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list(
    "OTP_WEBAUTHN_ALLOWED_ORIGINS", "http://localhost:8000" if DEBUG else f"https://{_SITE_HOSTS[0]}"
)
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_HELPER_CLASS = "portal.passkeys.PasskeyHelper"

# Sessions: an absolute lifetime plus an idle timeout enforced by SessionIdleTimeoutMiddleware.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = env_int("SESSION_MAX_AGE_SECONDS", 10 * 60 * 60)
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_TIMEOUT_SECONDS", 30 * 60)
# How long before the idle sign-out the page warns and offers to stay signed in (WCAG 2.2.1 asks for 20 s at least).
SESSION_IDLE_WARNING_SECONDS = env_int("SESSION_IDLE_WARNING_SECONDS", 2 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en-au"
TIME_ZONE = "Australia/Sydney"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("STATIC_MANIFEST", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Development serves app assets through whitenoise's finders, so runserver and gunicorn behave alike.
WHITENOISE_USE_FINDERS = DEBUG or not env_bool("STATIC_MANIFEST", True)

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")

# Client CSV import limits: anything larger is refused before a row is read.
CLIENT_IMPORT_MAX_BYTES = env_int("CLIENT_IMPORT_MAX_BYTES", 20 * 1024 * 1024)
CLIENT_IMPORT_MAX_ROWS = env_int("CLIENT_IMPORT_MAX_ROWS", 100_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = CLIENT_IMPORT_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = CLIENT_IMPORT_MAX_BYTES + 1024 * 1024

CLIENT_LIST_PAGE_SIZE = env_int("CLIENT_LIST_PAGE_SIZE", 50)
STAFF_UNUSED_DAYS = env_int("STAFF_UNUSED_DAYS", 90)

# --- The ATO over SBR ebMS3 (ato_gateway) ----------------------------------------------------------------------
# Endpoint URLs are settings, never constants: the stand-in ATO in development and tests, the ATO in production.
# Which ATO: "sandbox" (the stand-in ATO at ATO_EBMS_URL), "test" (the ATO's test environment) or "production".
ATO_ENVIRONMENT = env_str("ATO_ENVIRONMENT", "sandbox")
if ATO_ENVIRONMENT not in ("sandbox", "test", "production"):
    raise ImproperlyConfigured(f"ATO_ENVIRONMENT must be sandbox, test or production, not {ATO_ENVIRONMENT!r}.")
ATO_STS_URL = env_str("ATO_STS_URL", "http://127.0.0.1:8100/sts")
ATO_EBMS_URL = env_str("ATO_EBMS_URL", "http://127.0.0.1:8100/ebms")
# The token's AppliesTo, per environment (reported by another implementation); the stand-in takes production's.
ATO_STS_APPLIES_TO_BY_ENVIRONMENT = {
    "sandbox": "https://sbr.gov.au/services",
    "test": "https://test.sbr.gov.au/services",
    "production": "https://sbr.gov.au/services",
}
ATO_STS_APPLIES_TO = env_str("ATO_STS_APPLIES_TO", ATO_STS_APPLIES_TO_BY_ENVIRONMENT[ATO_ENVIRONMENT])
# The ATO's logical endpoints (SBR ebMS3 Web Services Implementation Guide), each action's in the registry. For the
# stand-in ATO each is a path under ATO_EBMS_URL; for the ATO's test and production environments each URL is set
# from the ATO's published list (ATO_TEST_SINGLE_SYNC_URL, ATO_PRODUCTION_BULKBATCH_ASYNC_PUSH_URL, ...), and a
# message for an endpoint left unset is refused with the setting's name rather than sent somewhere else.
ATO_ENDPOINT_NAMES = ("Single-sync", "Single-async", "BulkBatch-async-push", "BulkBatch-async-pull", "Collect-async")
ATO_ENDPOINTS = {
    environment: {
        name: env_str(f"ATO_{environment.upper()}_{name.upper().replace('-', '_')}_URL", "")
        for name in ATO_ENDPOINT_NAMES
    }
    for environment in ("test", "production")
}
# The certificate the ATO signs its replies and tokens with; a reply signed by anything else is refused.
ATO_SIGNING_CERT_FILE = env_str("ATO_SIGNING_CERT_FILE", str(BASE_DIR / "var" / "ato_sandbox" / "ato-signing.pem"))
# The software's registration with the ATO, sent in every message's MessageProperties. ProductID, BMS Vendor and
# BMS Name must match that registration: only development has stand-in values, and the gateway refuses to send
# without them.
SBR_PRODUCT_ID = env_str("SBR_PRODUCT_ID", "PRACTICE-PORTAL-DEV" if DEBUG else "")
SBR_BMS_VENDOR = env_str("SBR_BMS_VENDOR", "Practice Portal" if DEBUG else "")
SBR_BMS_NAME = env_str("SBR_BMS_NAME", "Practice Portal" if DEBUG else "")
SBR_BMS_VERSION = env_str("SBR_BMS_VERSION", "0.1")
ATO_CONNECT_TIMEOUT_SECONDS = float(env_str("ATO_CONNECT_TIMEOUT_SECONDS", "5"))
ATO_READ_TIMEOUT_SECONDS = float(env_str("ATO_READ_TIMEOUT_SECONDS", "60"))
# Outbox: transient failures retry with exponential backoff and jitter, up to this many attempts, then dead-letter.
GATEWAY_MAX_ATTEMPTS = env_int("GATEWAY_MAX_ATTEMPTS", 8)
GATEWAY_BACKOFF_BASE_SECONDS = float(env_str("GATEWAY_BACKOFF_BASE_SECONDS", "2"))
GATEWAY_BACKOFF_CAP_SECONDS = float(env_str("GATEWAY_BACKOFF_CAP_SECONDS", "600"))
# One RQ job carries up to this many messages: a job costs ~6 ms of RQ overhead here, so one job per message would
# cap a worker near 150 messages a second.
GATEWAY_BATCH_SIZE = env_int("GATEWAY_BATCH_SIZE", 50)
# Member account transactions in one MAAS Submit message (superannuation): a foundation data load of 100,000
# accounts is 100 messages, each small enough for the ATO and for a handler reading its results as a stream.
MAAS_BATCH_SIZE = env_int("MAAS_BATCH_SIZE", 1000)
# Exchanges in flight per worker process: waiting for one reply overlaps with signing the next. The real ATO answers
# in hundreds of milliseconds, so this, not CPU, bounds a nightly sync. 32 is the transport's connections a process:
# threads beyond it only wait. bench/bench_gateway.py measures the rate with 300 ms of latency beside none.
GATEWAY_SEND_THREADS = env_int("GATEWAY_SEND_THREADS", 32)
# A message whose send thread comes free this long after the batch was signed is signed again (a fresh eb:Timestamp),
# well inside a receiver's freshness window of a few minutes.
GATEWAY_RESIGN_AFTER_SECONDS = float(env_str("GATEWAY_RESIGN_AFTER_SECONDS", "60"))
# A row claimed by a worker that has not finished within this long is presumed lost with its worker.
# It must outlast the send job's own timeout (GATEWAY_JOB_TIMEOUT_SECONDS), or a slow batch would be sent twice.
GATEWAY_JOB_TIMEOUT_SECONDS = env_int("GATEWAY_JOB_TIMEOUT_SECONDS", 900)
GATEWAY_CLAIM_LEASE_SECONDS = env_int("GATEWAY_CLAIM_LEASE_SECONDS", 1200)
# A pushed message whose response has not come back by then is given up (a dead letter, shown in the console).
GATEWAY_PULL_GIVE_UP_HOURS = env_int("GATEWAY_PULL_GIVE_UP_HOURS", 72)
# What all the parts of one reply from the ATO may inflate to together (gzip parts): a reply beyond it is refused,
# and never inflated further than this.
GATEWAY_MAX_INFLATED_BYTES = env_int("GATEWAY_MAX_INFLATED_BYTES", 64 * 1024 * 1024)
# And what a reply's body may be as it arrives: read as it streams in, and refused once past this.
GATEWAY_MAX_REPLY_BYTES = env_int("GATEWAY_MAX_REPLY_BYTES", 64 * 1024 * 1024)
CREDENTIAL_EXPIRY_WARNING_DAYS = env_int("CREDENTIAL_EXPIRY_WARNING_DAYS", 30)

# Every handler masks TFNs. Django configures its own defaults first (django.utils.log.DEFAULT_LOGGING): a console
# handler on the `django` logger, printing with DEBUG on, and mail_admins, whose mail carries the traceback's frame
# locals. Both are replaced here by handlers that redact, and the `django` and `django.server` loggers are given
# only those, so no record leaves by a handler that does not mask TFNs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_tfn": {"()": "portal.logging.RedactTFNFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "client_error_without_traceback": {"()": "portal.logging.ClientErrorWithoutTracebackFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tfn"]},
        "django.server": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tfn"]},
        "mail_admins": {
            "class": "portal.logging.RedactingAdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "redact_tfn"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Printed by the root's console handler (propagating), mailed by this one.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # A 403 or 404 is one line, not a traceback (portal/logging.py says why).
        "django.request": {"filters": ["client_error_without_traceback"]},
        "django.db.backends": {"level": "INFO"},
        "rq.worker": {"level": "INFO"},
    },
}
