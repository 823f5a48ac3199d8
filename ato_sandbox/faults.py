"""Fault injection: what the next HTTP exchange does, decided once across every worker process.

Settings live in the storage, not in process memory, because a test that says "the next request gets a 503"
cannot know which of the gunicorn workers will take it. Random faults are reproducible: draw number *n* of seed
*s* always gives the same outcome, whichever process draws it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from .storage import Storage

OUTCOMES = ("ok", "http_500", "http_503", "reset", "timeout", "malformed", "bad_signature")
RATE_KEYS = ("http_500", "http_503", "reset", "timeout", "malformed", "bad_signature")
RANDOM_KEYS = (*RATE_KEYS, "latency_ms", "seed")
OTHER_KEYS = ("next", "empty_pulls", "outage_seconds", "timeout_seconds")
DEFAULT_TIMEOUT_SECONDS = 5.0


class FaultSettingsError(ValueError):
    """A control request the stand-in cannot follow; answered with HTTP 400."""


@dataclass(frozen=True)
class Decision:
    outcome: str  # one of OUTCOMES, or "outage"
    latency_ms: int
    timeout_seconds: float
    counted: bool = True  # whether deciding already counted the exchange as received


class Faults:
    def __init__(self, storage: Storage, *, default_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.storage = storage
        self.default_timeout_seconds = default_timeout_seconds

    def decide(self) -> Decision:
        """The exchange's outcome: an outage, then a queued ``next`` outcome, then a random draw.

        With no fault set (the usual case) this only reads, and the exchange is counted as received later, in the
        transaction that records the message (``counted=False``). Every write transaction takes the storage's
        one write lock, which all the stand-in's processes share: three a message left four processes waiting on
        each other, and one a message answered 15% more requests on the same CPU. Otherwise the outcome is
        consumed, and the exchange counted, in one write transaction."""
        reader = self.storage.connection()
        found = self.storage.settings(("random", "timeout_seconds", "outage_until"), reader)
        random_settings: dict[str, Any] = found.get("random", {})
        if (
            float(found.get("outage_until", 0.0)) <= time.time()
            and not any(float(random_settings.get(key, 0.0) or 0.0) for key in RATE_KEYS)
            and reader.execute("SELECT 1 FROM next_outcomes LIMIT 1").fetchone() is None
        ):
            latency = int(random_settings.get("latency_ms", 0) or 0)
            timeout = float(found.get("timeout_seconds", self.default_timeout_seconds))
            return Decision("ok", latency, timeout, counted=False)
        with self.storage.write() as db:
            self.storage.increment("received", 1, db)
            found = self.storage.settings(("random", "timeout_seconds", "outage_until"), db)
            random_settings = found.get("random", {})
            latency = int(random_settings.get("latency_ms", 0) or 0)
            timeout = float(found.get("timeout_seconds", self.default_timeout_seconds))
            if float(found.get("outage_until", 0.0)) > time.time():
                return Decision("outage", latency, timeout)
            row = db.execute("SELECT seq, outcome FROM next_outcomes ORDER BY seq LIMIT 1").fetchone()
            if row is not None:
                db.execute("DELETE FROM next_outcomes WHERE seq = ?", (row[0],))
                return Decision(str(row[1]), latency, timeout)
            rates = {key: float(random_settings.get(key, 0.0) or 0.0) for key in RATE_KEYS}
            if not any(rates.values()):
                return Decision("ok", latency, timeout)
            draw = self.storage.increment("fault_draws", 1, db)
            value = random.Random(f"{random_settings.get('seed', 1)}:{draw}").random()
            cumulative = 0.0
            for key in RATE_KEYS:
                cumulative += rates[key]
                if value < cumulative:
                    return Decision(key, latency, timeout)
            return Decision("ok", latency, timeout)

    def take_empty_pull(self, db: Any) -> bool:
        """True (and one fewer left) while ``empty_pulls`` asks for EBMS:0006; call inside the pull's transaction."""
        left = int(self.storage.setting("empty_pulls", 0, db))
        if left <= 0:
            return False
        self.storage.set_setting("empty_pulls", left - 1, db)
        return True

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - set(RANDOM_KEYS) - set(OTHER_KEYS)
        if unknown:
            raise FaultSettingsError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        with self.storage.write() as db:
            if any(key in changes for key in RANDOM_KEYS):
                # Rates, latency and seed are one setting: what is not named is zero, and draws start again.
                settings: dict[str, Any] = {}
                for key in RATE_KEYS:
                    rate = float(changes.get(key, 0.0))
                    if not 0.0 <= rate <= 1.0:
                        raise FaultSettingsError(f"{key} must be a rate between 0 and 1")
                    settings[key] = rate
                if sum(settings[key] for key in RATE_KEYS) > 1.0:
                    raise FaultSettingsError("the fault rates add up to more than 1")
                settings["latency_ms"] = int(changes.get("latency_ms", 0))
                settings["seed"] = changes.get("seed", 1)
                self.storage.set_setting("random", settings, db)
                db.execute("DELETE FROM counters WHERE name = 'fault_draws'")
            if "next" in changes:
                outcomes = changes["next"]
                if not isinstance(outcomes, list) or any(o not in OUTCOMES for o in outcomes):
                    raise FaultSettingsError(f"next must be a list of: {', '.join(OUTCOMES)}")
                db.execute("DELETE FROM next_outcomes")
                db.executemany("INSERT INTO next_outcomes (outcome) VALUES (?)", [(o,) for o in outcomes])
            if "empty_pulls" in changes:
                self.storage.set_setting("empty_pulls", max(0, int(changes["empty_pulls"])), db)
            if "outage_seconds" in changes:
                self.storage.set_setting("outage_until", time.time() + float(changes["outage_seconds"]), db)
            if "timeout_seconds" in changes:
                self.storage.set_setting("timeout_seconds", float(changes["timeout_seconds"]), db)
        return self.state()

    def clear(self) -> dict[str, Any]:
        with self.storage.write() as db:
            db.execute(
                "DELETE FROM settings WHERE name IN ('random', 'empty_pulls', 'outage_until', 'timeout_seconds')"
            )
            db.execute("DELETE FROM next_outcomes")
            db.execute("DELETE FROM counters WHERE name = 'fault_draws'")
        return self.state()

    def state(self) -> dict[str, Any]:
        db = self.storage.connection()
        outage_until = float(self.storage.setting("outage_until", 0.0))
        return {
            **self.storage.setting("random", {}),
            "next": [row[0] for row in db.execute("SELECT outcome FROM next_outcomes ORDER BY seq")],
            "empty_pulls": int(self.storage.setting("empty_pulls", 0)),
            "outage_seconds_left": max(0.0, round(outage_until - time.time(), 3)),
            "timeout_seconds": float(self.storage.setting("timeout_seconds", self.default_timeout_seconds)),
        }
