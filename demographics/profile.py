"""Changes of a client's details (CUDTL) and of its authorised contact, at client level or for one of its ATO
accounts (CUAUTHCNTCT), Validate
first, then Submit, as an address change goes (demographics/addresses.py): the ATO checks the change and says what
it would do; nothing changes until a member submits what it would accept. Each is one message, applied whole or
not at all by the ATO."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import transaction

from ato_gateway import api
from ato_gateway.api import Question, Reply, Subject
from ato_gateway.wire.documents import codec, cuauthcntct, cudtl
from ato_gateway.wire.documents.common import Account, PersonName
from clients.models import Client, ClientKind
from demographics.models import AddressChangeStatus, DetailsSnapshot, ProfileChange
from demographics.services import client_identifier
from portal.audit import audit_record

if TYPE_CHECKING:
    from portal.models import User

PURPOSE = "demographics.profile_change"
# The ATO's entity type for a client the register holds no details snapshot of (a snapshot's is the ATO's own).
ENTITY_TYPES = {
    ClientKind.INDIVIDUAL: "IND",
    ClientKind.COMPANY: "COY",
    ClientKind.TRUST: "TRT",
    ClientKind.PARTNERSHIP: "PTR",
    ClientKind.SUPER_FUND: "SMF",
}


def _entity_type(client: Client) -> str:
    snapshot = DetailsSnapshot.objects.filter(client=client).answered().newest_first().first()
    held = {str(f["field"]): str(f["value"]) for f in (snapshot.facts or [])} if snapshot else {}
    return held.get("Entity type") or ENTITY_TYPES.get(ClientKind(client.kind), "OTH")


def _or_none(values: dict[str, Any], name: str) -> Any:
    return values.get(name) or None


def _details(change: ProfileChange, cls: type[Any]) -> codec.Document:
    values = change.values
    name = None
    if values.get("family_name"):
        name = PersonName(family_name=values["family_name"], given_name=_or_none(values, "given_name"))
    death = values.get("death_date")
    return cls(  # type: ignore[no-any-return]
        client=client_identifier(change.client),
        entity_type=_entity_type(change.client),
        person_name=name,
        death_date=date.fromisoformat(death) if death else None,
        organisation_name=_or_none(values, "organisation_name"),
        legal_name=_or_none(values, "legal_name"),
    )


def _contact(change: ProfileChange, cls: type[Any]) -> codec.Document:
    values = change.values
    contact = cuauthcntct.AuthorisedContact(
        name=PersonName(family_name=values["family_name"], given_name=_or_none(values, "given_name")),
        position=_or_none(values, "position"),
        phone=_or_none(values, "phone"),
        email=_or_none(values, "email"),
    )
    kind, branch = change.account or ("", "")
    account = Account(kind=kind, branch=branch or None) if kind else None  # none: the client level's contact
    return cls(client=client_identifier(change.client), account=account, contact=contact)  # type: ignore[no-any-return]


def _document(change: ProfileChange, *, submit: bool) -> codec.Document:
    if change.kind == ProfileChange.Kind.DETAILS:
        return _details(change, cudtl.SubmitRequest if submit else cudtl.ValidateRequest)
    return _contact(change, cuauthcntct.SubmitRequest if submit else cuauthcntct.ValidateRequest)


def _subject(change: ProfileChange) -> Subject:
    label = f"{change.get_kind_display()} change for {change.client.display_name}"
    return Subject("demographics.profilechange", str(change.pk), label)


def profile_change_validate(*, user: User, client: Client, kind: str, values: dict[str, str]) -> ProfileChange:
    client_identifier(client)  # raises CannotAsk before anything is recorded
    with transaction.atomic():
        change = ProfileChange.objects.create(
            practice=client.practice, client=client, kind=kind, created_by=user, values=values
        )
        change.validate_question = api.ask(
            _document(change, submit=False), practice=client.practice, by=user, purpose=PURPOSE, about=_subject(change)
        )
        change.save(update_fields=["validate_question"])
        audit_record("demographics.profile_validate", actor=user, target=change, details={"kind": kind})
    return change


class NotReady(Exception):
    """The change has not been checked by the ATO without errors, so it cannot be submitted."""


def profile_change_submit(*, user: User, change: ProfileChange) -> ProfileChange:
    with transaction.atomic():
        locked = ProfileChange.objects.select_for_update(of=("self",)).select_related("client").get(pk=change.pk)
        if locked.status != AddressChangeStatus.VALIDATED:  # a second click finds it submitted already
            raise NotReady("Only a change the ATO has checked and would accept can be submitted.")
        locked.submit_question = api.ask(
            _document(locked, submit=True), practice=locked.practice, by=user, purpose=PURPOSE, about=_subject(locked)
        )
        locked.status = AddressChangeStatus.SUBMITTING
        locked.save(update_fields=["submit_question", "status"])
        audit_record("demographics.profile_submit", actor=user, target=locked, details={"kind": locked.kind})
    return locked


def on_profile_answer(question: Question, reply: Reply[Any]) -> None:
    """The ATO's answer to a Validate or a Submit, applied once in the transaction that settles the question."""
    change = ProfileChange.objects.filter(pk=int(question.subject_id)).first()
    if change is None:
        return
    if reply.failure and not reply.errors:
        change.status = AddressChangeStatus.FAILED
    elif reply.answered:
        submitted = question.pk == change.submit_question_id
        change.status = AddressChangeStatus.ACCEPTED if submitted else AddressChangeStatus.VALIDATED
    else:
        change.status = AddressChangeStatus.REFUSED
    change.save(update_fields=["status"])
