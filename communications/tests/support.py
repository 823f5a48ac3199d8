"""Letters and PDFs for the inbox's tests: a register client made from the stand-in ATO's row, a PDF that states a
date (the stand-in's letters state none), and letters written straight into the database for page tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from fpdf import FPDF

from clients.models import Client, ClientKind
from communications.models import DocumentState, Letter, LetterDocument, search_vector
from portal.models import Practice
from portal.sealing import seal_bytes

ENTITY_KINDS = {"IND": ClientKind.INDIVIDUAL, "COY": ClientKind.COMPANY, "TRT": ClientKind.TRUST}


def client_from_ato(practice: Practice, row: dict[str, Any]) -> Client:
    client = Client(
        practice=practice,
        kind=ENTITY_KINDS.get(row["entity"], ClientKind.OTHER),
        family_name=row["family_name"] or "",
        given_names=row["given_name"] or "",
        organisation_name=row["organisation_name"] or row.get("legal_name") or "",
        abn=row["abn"] or "",
    )
    client.set_tfn(row["tfn"])
    client.save()
    return client


def pdf(*lines: str) -> bytes:
    document = FPDF(format="A4")
    document.add_page()
    document.set_font("Helvetica", size=11)
    for line in lines:
        document.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


_counter = iter(range(10_000_000, 99_999_999))


def letter(practice: Practice, *, document: bytes | None = None, **fields: Any) -> Letter:
    values: dict[str, Any] = {
        "ato_id": str(next(_counter)),
        "name": "CITIZEN, Jane",
        "kind": "NOA",
        "title": "Notice of assessment 2026",
        "issued": date(2026, 11, 1),
        "due": date(2026, 11, 22),
        "document_state": DocumentState.STORED if document else DocumentState.WAITING,
    }
    values.update(fields)
    values.setdefault("search", search_vector(values["title"]))
    made = Letter.objects.create(practice=practice, **values)
    if document is not None:
        LetterDocument.objects.create(
            letter=made,
            file_name=f"{made.kind}-{made.ato_id}.pdf",
            media_type="application/pdf",
            size=len(document),
            content=seal_bytes(document),
        )
    return made
