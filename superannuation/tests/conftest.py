"""The project's fixtures (tests/conftest.py) for the app's own tests: a real stand-in ATO, a real RQ worker, the
test practice and its staff."""

from tests.conftest import (  # noqa: F401 - fixtures
    _clean_redis,
    admin,
    agent,
    ato,
    base_url,
    browser,
    firm,
    login,
    new_context,
    other_practice,
    outsider,
    page,
    playwright_instance,
    practice,
    reader,
    rq_worker,
    sandbox,
)
