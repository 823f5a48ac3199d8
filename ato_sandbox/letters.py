"""The stand-in ATO's letters as PDF documents, made from a communication's register row.

fpdf2 writes the PDF: a small, pure-Python, well-maintained library, so the sandbox has no PDF syntax of its own to
get wrong (cross-reference offsets, stream lengths). A letter is one page of text in a standard font, and the same
row always gives the same bytes: the creation date is the letter's issue date, and fpdf2 derives the file
identifier from the content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos

MEDIA_TYPE = "application/pdf"

# What each kind of letter says, in a sentence or two: enough for a person to tell them apart when opened.
_BODY = {
    "NOA": (
        "We have assessed your income tax return. Your notice of assessment sets out your taxable income, "
        "the tax on it and any amount payable or refundable."
    ),
    "ASR": (
        "Our records show an activity statement that is due or overdue. Please lodge it, or ask your registered "
        "agent to lodge it, by the due date to avoid penalties."
    ),
    "DEBT": (
        "Your account has an overdue amount. Please pay it now, or contact us or your registered agent to arrange "
        "a payment plan."
    ),
    "PPA": "This letter is about the payment plan on your account. Please keep up the agreed instalments.",
    "AUD": "This letter is about an audit of your tax affairs. Please read it and respond by the date it gives.",
    "REV": "This letter is about a review of your tax affairs. Please read it and respond by the date it gives.",
}


@dataclass(frozen=True)
class Letter:
    reference: str  # the communication id
    kind: str
    title: str
    issued: date
    client_name: str
    account: str | None = None  # e.g. "AS 001", "ITX"


def file_name(letter: Letter) -> str:
    return f"{letter.kind}-{letter.reference}.pdf"


def _latin1(text: str) -> str:
    """The standard PDF fonts cover Latin-1 only; anything else shows as '?' rather than failing the letter."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render(letter: Letter) -> bytes:
    """One A4 page: the ATO's heading, the title, the date, the client, the account and the letter's text."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(letter.issued.year, letter.issued.month, letter.issued.day, tzinfo=UTC))
    pdf.set_title(_latin1(letter.title))
    pdf.set_author("Australian Taxation Office (stand-in)")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, "Australian Taxation Office", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, f"Date of issue: {letter.issued.day} {letter.issued:%B %Y}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(0, 6, f"Our reference: {letter.reference}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if letter.account:
        pdf.cell(0, 6, f"Account: {letter.account}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    pdf.cell(0, 6, _latin1(f"Dear {letter.client_name},"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 7, _latin1(letter.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, _BODY.get(letter.kind, ""), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(8)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(
        0, 4, "Issued by the stand-in ATO for testing: this is not a real ATO communication.", new_x=XPos.LMARGIN
    )
    return bytes(pdf.output())
