"""What the question fragment (``ato_gateway/_question.html``) needs from the gateway in a template."""

from __future__ import annotations

from django import template

from ato_gateway.api.questions import refusal_in_plain_words
from ato_gateway.models import Question

register = template.Library()


@register.simple_tag
def refusal_words(question: Question) -> list[str]:
    """Why the ATO refused the question, or why it could not be completed, in plain words."""
    return refusal_in_plain_words(question)
