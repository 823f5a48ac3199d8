"""Questions as the gateway leaves them, for tests that need a page at a given step without the stand-in ATO: the
outbox message holds the encoded request and, when the ATO answered, the encoded response, exactly as a worker
records them, so the page decodes a real answer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from ato_gateway.models import MessageStatus, OutboxMessage, Question, QuestionState
from ato_gateway.services import Subject
from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec
from portal.models import Practice, User


def event(code: str, severity: str, text: str, **parameters: str) -> dict[str, Any]:
    """One event item as the gateway stores it."""
    return {
        "code": code,
        "severity": severity,
        "short_description": text,
        "detailed_description": "",
        "parameters": [[k, v] for k, v in parameters.items()],
    }


def fabricate_question(
    *,
    practice: Practice,
    by: User | None,
    purpose: str,
    request: codec.Document,
    response: codec.Document | None = None,
    events: Sequence[dict[str, Any]] = (),
    state: str = QuestionState.ANSWERED,
    failure_code: str = "",
    failure: str = "",
    about: Subject | None = None,
) -> Question:
    action = registry.get(request.SERVICE_ACTION)
    settled = state != QuestionState.WAITING
    message = OutboxMessage(
        practice=practice,
        service=action.service,
        action=action.action,
        message_id=f"{uuid.uuid4()}@test",
        conversation_id=str(uuid.uuid4()),
        status=(MessageStatus.FAILED if state == QuestionState.FAILED else MessageStatus.DONE)
        if settled
        else MessageStatus.PENDING,
        error_code=failure_code,
        error_text=failure,
        created_by=by,
        completed_at=timezone.now() if settled else None,
    )
    message.set_payloads([(action.request_document, codec.encode(request).decode())])
    if state in (QuestionState.ANSWERED, QuestionState.REFUSED):
        documents = {action.response_document: codec.encode(response).decode()} if response is not None else {}
        message.set_response({"documents": documents, "events": list(events)})
    message.save()
    return Question.objects.create(
        practice=practice,
        asked_by=by,
        purpose=purpose,
        service_action=request.SERVICE_ACTION,
        subject_type=about.type if about else "",
        subject_id=about.id if about else "",
        subject_repr=about.repr if about else "",
        message=message,
        state=state,
        failure_code=failure_code,
        failure=failure if failure_code or failure else "",
        answered_at=timezone.now() if settled else None,
    )
