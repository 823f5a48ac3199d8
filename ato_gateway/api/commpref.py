"""COMMPREF: where the ATO sends the letters of the practice's clients, as the practice default (no client) or as a
client's own preference. Each function records one request; the answer goes to the handler registered for the
action (``ato_gateway.handlers``), which reads it with ``base.read``. Run ``validate`` first and show its warnings;
``submit`` applies the same rules."""

from __future__ import annotations

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import commpref
from ato_gateway.wire.documents.common import ClientIdentifier
from portal.models import Practice, User

from . import base

GET = commpref.GetRequest.SERVICE_ACTION
VALIDATE = commpref.ValidateRequest.SERVICE_ACTION
SUBMIT = commpref.SubmitRequest.SERVICE_ACTION
CHANNELS = commpref.CHANNELS


def _client(tfn: str | None, abn: str | None, wpn: str | None) -> ClientIdentifier | None:
    return ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn) if (tfn or abn or wpn) else None


def get(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """The practice default (no identifier), or the client's preference: its own, or else the practice default
    marked ``practice_default``."""
    document = commpref.GetRequest(client=_client(tfn, abn, wpn))
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def _change(
    tfn: str | None, abn: str | None, wpn: str | None, channel: str | None, email: str | None, use_default: bool
) -> commpref.PreferenceChange:
    if use_default == (channel is not None):
        raise ValueError("give either a channel or use_practice_default=True")
    return commpref.PreferenceChange(
        client=_client(tfn, abn, wpn),
        channel=channel,
        email=email or None,
        use_practice_default=True if use_default else None,
    )


def validate(
    *,
    practice: Practice,
    channel: str | None = None,
    email: str | None = None,
    use_practice_default: bool = False,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Check a change without making it: the answer is the preference as ``submit`` would leave it, with the same
    warnings and errors. ``channel`` is ELEC, POST or EMAIL (a client's only, with ``email``); or, for a client,
    ``use_practice_default=True`` drops its own preference."""
    change = _change(tfn, abn, wpn, channel, email, use_practice_default)
    document = commpref.ValidateRequest(**vars(change))
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def submit(
    *,
    practice: Practice,
    channel: str | None = None,
    email: str | None = None,
    use_practice_default: bool = False,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Make the change ``validate`` checks; the answer is the preference as it now is."""
    change = _change(tfn, abn, wpn, channel, email, use_practice_default)
    document = commpref.SubmitRequest(**vars(change))
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
