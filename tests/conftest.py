from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import django_rq
import pytest
from django.conf import settings
from django.test import Client as HttpClient
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from clients.csv_io import validate_row
from clients.models import Client, ClientGroup
from clients.services import _client_from_row
from clients.testdata import make_client_rows
from portal.capabilities import Role
from portal.models import Practice, User

PASSWORD = "correct-horse-battery-staple"

# PBKDF2's cost is the point in production and pure overhead here: every fixture user and every sign-in paid about
# half a second of it. What the tests check of passwords (right, wrong, lockout) does not depend on the hasher.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Each test starts with empty queues and an empty cache on the test Redis database."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield


def make_practice(name: str = "Harbour Tax", abn: str = "53004085616") -> Practice:
    return Practice.objects.create(name=name, abn=abn, agent_number="87654321")


def make_user(practice: Practice, username: str, role: Role, *, mfa: bool = True) -> User:
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        practice=practice,
        role=role,
        first_name=username.title(),
        last_name="Tester",
    )
    if mfa:
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def current_code(user: User) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def verified_client(user: User) -> HttpClient:
    """A test client signed in with password and second factor, the way the session looks after real MFA."""
    http = HttpClient()
    http.force_login(user, backend="portal.backends.PracticeBackend")
    session = http.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return http


def add_clients(practice: Practice, count: int, seed: int = 7) -> list[Client]:
    built = []
    for i, raw in enumerate(make_client_rows(count, seed=seed)):
        row, errors = validate_row(i + 2, raw)
        assert row is not None, errors
        built.append(_client_from_row(practice, row, None))
    return Client.objects.bulk_create(built)


@pytest.fixture
def practice(db: Any) -> Practice:
    return make_practice()


@pytest.fixture
def other_practice(db: Any) -> Practice:
    return make_practice("Elsewhere Accounting", "51824753556")


@pytest.fixture
def admin(practice: Practice) -> User:
    return make_user(practice, "alice", Role.PRACTICE_ADMIN)


@pytest.fixture
def agent(practice: Practice) -> User:
    return make_user(practice, "bob", Role.AGENT)


@pytest.fixture
def reader(practice: Practice) -> User:
    return make_user(practice, "rita", Role.READ_ONLY)


@pytest.fixture
def outsider(other_practice: Practice) -> User:
    """An admin of another practice: every capability, none of our data."""
    return make_user(other_practice, "oscar", Role.PRACTICE_ADMIN)


@pytest.fixture
def login() -> Callable[[User], HttpClient]:
    return verified_client


@pytest.fixture
def clients_of(practice: Practice) -> list[Client]:
    return add_clients(practice, 30)


@pytest.fixture
def group(practice: Practice) -> ClientGroup:
    return ClientGroup.objects.create(practice=practice, name="Payroll")


def run_worker_burst() -> None:
    """A real RQ worker on the real test Redis, run in this process until the queues are empty. SimpleWorker
    (no fork) so that it shares this test's database connection and sees its committed rows."""
    from rq import SimpleWorker

    queues = [django_rq.get_queue(name) for name in ("high", "default", "low")]
    SimpleWorker(queues, connection=queues[0].connection).work(burst=True)


os.environ.setdefault("PLAYWRIGHT_BROWSERS_PATH", "0")

# The stand-in ATO process and the agent practice at it, for every test module that asks for them. Imported last:
# these modules use run_worker_burst above.
from tests.ato_fixtures import ato  # noqa: E402, F401 - fixtures
from tests.browser_support import (  # noqa: E402, F401 - fixtures for the browser tests
    base_url,
    browser,
    firm,
    new_context,
    page,
    playwright_instance,
    rq_worker,
)
from tests.gateway_fixtures import credentialed, gateway, sandbox  # noqa: E402, F401 - fixtures
