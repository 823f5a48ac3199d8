"""Relationship workflows: ask the ATO (search, validate, submit, validate-remove, remove) and apply its answers.

Each ``start_*`` records an ``AtoRequest`` and asks its question (``ato_gateway.api.ask``) in one transaction; the
page then waits for the answer. ``on_answer`` is the handler of the questions' purpose: for a submit or a remove the
ATO accepted, it changes the register (client, links, history) in the same transaction that settles the question,
so a client is never left half-linked. The gateway hands it each answer once: an answer delivered twice changes
nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from ato_gateway import api
from ato_gateway.api import Question, QuestionState, Reply, Subject
from ato_gateway.wire.documents import codec, curel
from ato_gateway.wire.documents.common import Account, ClientIdentifier, PersonName
from clients.models import AccountKind, AccountRole, Client, ClientAccount, ClientKind
from clients.tfn import tfn_lookup_hash
from portal.audit import audit_record
from portal.spreadsheet import spreadsheet_cell  # noqa: F401 - the reports' cells (bulk, reconciliation)
from relationships.models import (
    AtoRequest,
    ChangeKind,
    Link,
    LinkChange,
    RequestKind,
    describe_level,
)

if TYPE_CHECKING:
    from portal.models import User

SUBJECT = "atorequest"
# The kind of question every one-client step (search, validate, submit, validate-remove, remove) asks the ATO: its
# answers come back to ``on_answer``.
PURPOSE = "relationships.request"
LinkKey = tuple[str, str, str, str]  # level, account kind, branch, role
ENTITY_KINDS = {
    "IND": ClientKind.INDIVIDUAL,
    "COY": ClientKind.COMPANY,
    "TRT": ClientKind.TRUST,
    "PTR": ClientKind.PARTNERSHIP,
    "SMF": ClientKind.SUPER_FUND,
    "OTH": ClientKind.OTHER,
}
LOCAL_ACCOUNTS = {"ITX": AccountKind.INCOME_TAX, "AS": AccountKind.ACTIVITY_STATEMENT, "FBT": AccountKind.FBT}
# --- the levels, between the portal's keys and the documents ---


def relationship_of(key: Sequence[str]) -> curel.Relationship:
    level, kind, branch, role = key
    account = Account(kind, branch or None) if kind else None
    return curel.Relationship(level, account, role or None)


def key_of(relationship: Any) -> LinkKey:
    account = relationship.account
    return (
        relationship.level,
        account.kind if account else "",
        (account.branch or "") if account else "",
        relationship.role or "",
    )


# --- starting a request ---


def request_document(req: AtoRequest) -> codec.Document:
    """The CUREL document a request step asks: the client as the person named them, and the links."""
    client = ClientIdentifier.of(**{req.identifier_kind.lower(): req.identifier()})
    links = [relationship_of(k) for k in req.links]
    if req.kind in (RequestKind.VALIDATE_REMOVE, RequestKind.REMOVE):
        cls = curel.ValidateRemoveRequest if req.kind == RequestKind.VALIDATE_REMOVE else curel.RemoveRequest
        return cls(client=client, relationships=links)
    names: dict[str, Any] = {
        "person_name": PersonName(req.family_name, req.given_name or None) if req.family_name else None,
        "organisation_name": req.organisation_name or None,
        "birth_date": req.birth_date,
    }
    if req.kind == RequestKind.SEARCH:
        return curel.SearchRequest(client=client, **names)
    cls_add = curel.ValidateRequest if req.kind == RequestKind.VALIDATE else curel.SubmitRequest
    return cls_add(client=client, relationships=links, **names)


def _subject(req: AtoRequest) -> Subject:
    """What the gateway's console shows the question is about: whom, by name, since "Link *** *** 909" alone says
    nothing to a person (the identifier masked: it is a TFN at times)."""
    # The names the request carries first: a bulk link's hundreds of rows must not cost a query each.
    name = req.organisation_name or ", ".join(part for part in (req.family_name.upper(), req.given_name) if part)
    if not name and req.client_id is not None:
        name = req.client.display_name if req.client else ""
    words = " ".join(part for part in (req.get_kind_display(), name, req.masked_identifier) if part)
    return Subject(SUBJECT, str(req.pk), words)


def _send(req: AtoRequest) -> None:
    """Ask the request's question in the caller's transaction (the gateway sends it after commit)."""
    req.question = api.ask(
        request_document(req), practice=req.practice, by=req.created_by, purpose=PURPOSE, about=_subject(req)
    )
    req.save(update_fields=["question"])


def send_many(reqs: Sequence[AtoRequest], *, purpose: str = PURPOSE) -> None:
    """Ask the questions of many saved validate or submit requests of one practice (a bulk link's rows) in the
    caller's transaction: one insert, sent in the gateway's batches rather than a job per message."""
    if not reqs:
        return
    first = reqs[0]
    assert all(r.kind == first.kind and r.practice_id == first.practice_id for r in reqs)
    questions = api.ask_many(
        [(request_document(r), _subject(r)) for r in reqs],
        practice=first.practice,
        by=first.created_by,
        purpose=purpose,
    )
    for req, question in zip(reqs, questions, strict=True):
        req.question = question
    AtoRequest.objects.bulk_update(reqs, ["question"], batch_size=500)


def _new(user: User, kind: str, **fields: Any) -> AtoRequest:
    return AtoRequest(practice=user.tenant, created_by=user, kind=kind, **fields)


def next_step(previous: AtoRequest, kind: str, user: User, links: Iterable[Sequence[str]] | None = None) -> AtoRequest:
    """The next step (unsaved), asked with the same sealed identification as the previous one: a person's next
    page, or a bulk row's. ``links`` None asks for the same links again."""
    return AtoRequest(
        practice_id=previous.practice_id,
        created_by=user,
        kind=kind,
        parent=previous,
        client_id=previous.client_id,
        bulk_row_id=previous.bulk_row_id,
        identifier_kind=previous.identifier_kind,
        identifier_sealed=previous.identifier_sealed,
        identifier_last3=previous.identifier_last3,
        family_name=previous.family_name,
        given_name=previous.given_name,
        organisation_name=previous.organisation_name,
        birth_date=previous.birth_date,
        links=[list(k) for k in (previous.links if links is None else links)],
    )


def _follow(user: User, previous: AtoRequest, kind: str, links: Iterable[LinkKey] | None = None) -> AtoRequest:
    req = next_step(previous, kind, user, links)
    req.save()
    _send(req)
    return req


def link_search(
    *,
    user: User,
    identifier_kind: str,
    identifier: str,
    family_name: str = "",
    given_name: str = "",
    organisation_name: str = "",
    birth_date: date | None = None,
    client: Client | None = None,
) -> AtoRequest:
    with transaction.atomic():
        req = _new(
            user,
            RequestKind.SEARCH,
            client=client,
            family_name=family_name,
            given_name=given_name,
            organisation_name=organisation_name,
            birth_date=birth_date,
        )
        req.seal_identifier(identifier_kind, identifier)
        req.save()
        _send(req)
        audit_record(
            "relationships.search",
            actor=user,
            target=req,
            details={"identifier": identifier_kind, "last3": identifier[-3:]},
        )
    return req


def link_validate(*, user: User, previous: AtoRequest, links: Iterable[LinkKey]) -> AtoRequest:
    with transaction.atomic():
        req = _follow(user, previous, RequestKind.VALIDATE, links)
        audit_record("relationships.validate", actor=user, target=req, details={"links": req.links})
    return req


class NotReady(Exception):
    """The step before has not been answered without errors, so this one cannot be sent."""


def _once(validated: AtoRequest, kind: str, needs: str) -> tuple[AtoRequest, AtoRequest | None]:
    """The validation locked, and the step it already led to. Two clicks (or two tabs) arrive at once: the lock
    makes the second wait for the first's commit and find its step, so the ATO is asked once."""
    locked = AtoRequest.objects.select_for_update(of=("self",)).select_related("question").get(pk=validated.pk)
    earlier = locked.children.filter(kind=kind).order_by("created_at", "pk").first()
    if earlier is None and (locked.kind != needs or locked.status != QuestionState.ANSWERED):
        raise NotReady(
            "Validate the link first; submit is offered only after the ATO has validated it."
            if kind == RequestKind.SUBMIT
            else "Validate the removal first."
        )
    return locked, earlier


def link_submit(*, user: User, validated: AtoRequest) -> AtoRequest:
    """Link, only after a Validate the ATO answered without errors (its warnings were shown). Asked once: a second
    click gets the submit already asked for."""
    with transaction.atomic():
        locked, earlier = _once(validated, RequestKind.SUBMIT, RequestKind.VALIDATE)
        if earlier is not None:
            return earlier
        if locked.client_id is None and user.restricted_to_groups:
            # The link would be applied to the register's client with this identifier (_local_client): one outside
            # the person's groups is not theirs to link, and is refused before the ATO is asked.
            match = _register_match(locked)
            if match is not None and not Client.objects.visible_to(user).filter(pk=match.pk).exists():
                raise NotReady(
                    "This client is already in the register, in a group you do not work with: a colleague who "
                    "works with that group can link them."
                )
        req = _follow(user, locked, RequestKind.SUBMIT)
        audit_record("relationships.submit", actor=user, target=req, details={"links": req.links})
    return req


def client_identification(client: Client) -> tuple[str, str]:
    """How to name a register client to the ATO: its TFN (decrypted only into the sealed request, never shown),
    else its ABN, else its WPN."""
    if client.tfn_ciphertext:
        return "TFN", client.reveal_tfn()
    if client.abn:
        return "ABN", client.abn
    if client.wpn:
        return "WPN", client.wpn
    raise NotReady("This client has no TFN, ABN or WPN to name them to the ATO.")


def link_validate_removal(*, user: User, client: Client, links: Iterable[Link]) -> AtoRequest:
    kind, value = client_identification(client)
    with transaction.atomic():
        req = _new(user, RequestKind.VALIDATE_REMOVE, client=client, links=[list(link.key) for link in links])
        req.seal_identifier(kind, value)
        req.save()
        _send(req)
        audit_record("relationships.validate_remove", actor=user, target=client, details={"links": req.links})
    return req


def link_remove(*, user: User, validated: AtoRequest) -> AtoRequest:
    """Remove, only after a Validate-remove the ATO answered without errors; asked once, as ``link_submit``."""
    with transaction.atomic():
        locked, earlier = _once(validated, RequestKind.REMOVE, RequestKind.VALIDATE_REMOVE)
        if earlier is not None:
            return earlier
        req = _follow(user, locked, RequestKind.REMOVE)
        audit_record("relationships.remove", actor=user, target=locked.client, details={"links": req.links})
    return req


# --- answers ---


def answer_apply(question: Question, reply: Reply[Any]) -> AtoRequest | None:
    """Apply the ATO's answer to the request step that asked it: for a submit or a remove the ATO accepted, the
    register's client, links and history. Returns the request (None if the question is no step of ours)."""
    req = AtoRequest.objects.select_for_update().filter(question=question).first()
    if req is None or req.practice_id != question.practice_id:
        return None
    req.question, req._reply = question, reply
    if question.state == QuestionState.ANSWERED:
        if isinstance(reply.document, curel.SubmitResponse):
            _apply_links(req, reply.document, question)
        elif isinstance(reply.document, curel.RemoveResponse):
            _apply_removal(req, reply.document, question)
    return req


def on_answer(question: Question, reply: Reply[Any]) -> None:
    """The handler for the answers to a person's CUREL steps. The gateway calls it when the question's state
    changes, including a late answer to a question shown as failed: the ATO's answer always wins, so a link the ATO
    made after the portal had given up is still recorded. (A bulk link's rows have a purpose and handler of their
    own, ``bulk.on_row_answer``, which applies the answer the same way.)"""
    answer_apply(question, reply)


def found_client(req: AtoRequest) -> curel.FoundClient | None:
    """What the ATO said about the client when it was searched for (the search earlier in this request chain)."""
    step: AtoRequest | None = req
    while step is not None:
        if step.kind == RequestKind.SEARCH and step.status == QuestionState.ANSWERED:
            document = step.reply().document
            return document.client if isinstance(document, curel.SearchResponse) else None
        step = step.parent
    return None


def visible_request_ids(user: User) -> QuerySet[Any, Any]:
    """The ids (as text) of the requests a user may see, for the audit search and the gateway console."""
    ids: QuerySet[Any, Any] = AtoRequest.objects.visible_to(user).annotate(key=Cast("pk", CharField())).values("key")
    return ids


def _register_match(req: AtoRequest) -> Client | None:
    """The practice's register client with the identifier the request names the person by, if there is one."""
    value = req.identifier()
    existing = Client.objects.filter(practice=req.practice)
    return (
        existing.filter(tfn_hash=tfn_lookup_hash(value))
        if req.identifier_kind == "TFN"
        else existing.filter(abn=value)
        if req.identifier_kind == "ABN"
        else existing.filter(wpn=value)
    ).first()


def _local_client(req: AtoRequest) -> Client:
    """The register's client for the request: the one it is about, or the one with its identifier, or a new one
    made from what the ATO found (its accounts and roles too)."""
    practice = req.practice
    if req.client_id is not None:
        return Client.objects.select_for_update().get(pk=req.client_id, practice=practice)
    value = req.identifier()
    match = _register_match(req)
    if match is not None:
        return match
    found = found_client(req)
    default_kind = ClientKind.INDIVIDUAL if req.birth_date else ClientKind.OTHER
    kind = ENTITY_KINDS.get(found.entity_type, default_kind) if found else default_kind
    person = found.person_name if found else None
    client = Client(
        practice=practice,
        kind=kind,
        family_name=(person.family_name if person else "") or req.family_name,
        given_names=" ".join(filter(None, [person.given_name, person.other_given_name])) if person else req.given_name,
        organisation_name=(found.organisation_name if found else None) or req.organisation_name,
        date_of_birth=req.birth_date if kind == ClientKind.INDIVIDUAL else None,
        abn=(found.abn if found else None) or (value if req.identifier_kind == "ABN" else ""),
        wpn=value if req.identifier_kind == "WPN" else "",
        created_by=req.created_by,
    )
    client.set_tfn(value if req.identifier_kind == "TFN" else "")
    client.set_names()
    client.save()
    for account in found.accounts if found else []:
        local = ClientAccount.objects.create(
            client=client, kind=LOCAL_ACCOUNTS[account.kind], branch=account.branch or ""
        )
        AccountRole.objects.bulk_create([AccountRole(account=local, role=r) for r in account.roles])
    audit_record("client.created", actor=req.created_by, practice=practice, target=client, details={"from": "ato"})
    return client


def _apply_links(req: AtoRequest, document: curel.SubmitResponse, question: Question) -> None:
    client = _local_client(req)
    req.client = client
    req.save(update_fields=["client"])
    for added in document.relationships:
        key = key_of(added)
        existing = Link.objects.current().filter(client=client, level=key[0], account_kind=key[1], branch=key[2])
        if not existing.filter(role=key[3]).exists():
            level, kind, branch, role = key
            Link.objects.create(
                practice=req.practice,
                client=client,
                level=level,
                account_kind=kind,
                branch=branch,
                role=role,
                started_on=added.start_date,
            )
        _history(req, client, ChangeKind.ADDED, key, question, note="" if added.status == "NEW" else "already linked")
    for other in document.superseded:
        note = f"Ended {other.agent_name} ({other.agent_number})'s link for {describe_level(*key_of(other))}."
        _history(req, client, ChangeKind.SUPERSEDED_OTHER, key_of(other), question, note=note)
    audit_record(
        "relationships.linked",
        actor=req.created_by,
        practice=req.practice,
        target=client,
        details={"links": [list(key_of(a)) for a in document.relationships], "message_id": question.ebms_message_id},
    )


def _apply_removal(req: AtoRequest, document: curel.RemoveResponse, question: Question) -> None:
    client = req.client
    if client is None:
        return
    for removed in document.relationships:
        key = key_of(removed)
        Link.objects.current().filter(
            client=client, level=key[0], account_kind=key[1], branch=key[2], role=key[3]
        ).update(ended_on=removed.end_date or timezone.localdate(), end_reason="REMOVED")
        _history(req, client, ChangeKind.REMOVED, key, question)
    audit_record(
        "relationships.removed",
        actor=req.created_by,
        practice=req.practice,
        target=client,
        details={"links": [list(key_of(r)) for r in document.relationships], "message_id": question.ebms_message_id},
    )


def _history(req: AtoRequest, client: Client, kind: str, key: LinkKey, question: Question, *, note: str = "") -> None:
    level, account_kind, branch, role = key
    LinkChange.objects.create(
        practice=req.practice,
        client=client,
        kind=kind,
        level=level,
        account_kind=account_kind,
        branch=branch,
        role=role,
        note=note[:300],
        actor=req.created_by,
        message_id=question.ebms_message_id,
    )


# --- plain words for what the ATO said ---


def warnings_in_plain_words(req: AtoRequest) -> list[str]:
    """Every warning of a Validate before Submit, above all which other agent's link the new one would end. The
    ATO's own warnings naming another agent say the same as the superseded list: they give way to ours; any other
    warning is shown in the gateway's plain words."""
    document = req.reply().document
    superseded = list(getattr(document, "superseded", []))
    lines = [
        f"This will end {s.agent_name} ({s.agent_number})'s link for {describe_level(*key_of(s))}." for s in superseded
    ]
    lines += [
        api.item_in_plain_words(i) for i in req.items("Warning") if not (superseded and "AgentNumber" in i.parameters)
    ]
    return lines


def refusal_in_plain_words(req: AtoRequest) -> list[str]:
    """Why the ATO refused, or why the request could not be completed, in words a person can act on."""
    if req.question is None:
        return []
    return api.refusal_in_plain_words(req.question, req.reply())
