"""The typed answer a domain app gets: the ATO's response document, every event item, and why the question could
not be completed when it could not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ato_gateway.wire.documents import codec

D = TypeVar("D", bound=codec.Document)


@dataclass(frozen=True)
class Item:
    """One event item of the ATO's answer."""

    code: str
    severity: str
    text: str
    detail: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Item:
        return cls(
            code=event.get("code", ""),
            severity=event.get("severity", ""),
            text=event.get("short_description", ""),
            detail=event.get("detailed_description", ""),
            parameters={str(k): str(v) for k, v in event.get("parameters", [])},
        )


@dataclass(frozen=True)
class Reply(Generic[D]):
    """The answer to one question: the response document (None when the ATO refused it, or when the purpose reads
    the answer as a stream) and every event item. When the question could not be completed (a dead letter, an ebMS
    error, a credential problem) there are no items and ``failure`` says why, with its code in ``failure_code``.

    A purpose registered with ``stream=`` gets ``stream`` instead of ``document``: the list's items parsed one at a
    time; once it is exhausted, ``stream.document`` holds the document's other fields (the continuation)."""

    document: D | None
    items: list[Item]
    failure: str = ""
    failure_code: str = ""
    gave_up: bool = False  # the failure is a dead letter: the ATO was asked again and again, and never answered
    stream: codec.Stream[D, Any] | None = None

    @property
    def errors(self) -> list[Item]:
        return [i for i in self.items if i.severity == "Error"]

    @property
    def warnings(self) -> list[Item]:
        return [i for i in self.items if i.severity == "Warning"]

    @property
    def information(self) -> list[Item]:
        return [i for i in self.items if i.severity == "Information"]

    @property
    def ok(self) -> bool:
        return not self.failure and not self.errors

    @property
    def answered(self) -> bool:
        """The ATO answered and refused nothing: a document (or a stream of one) to act on."""
        return self.ok and (self.document is not None or self.stream is not None)
