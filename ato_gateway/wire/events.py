"""The business response ("event", ``http://sbr.gov.au/comn/event.02.data``): build and parse."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from . import registry, xmlsafe

EVENT_NS = registry.EVENT_NAMESPACE
_SEVERITY_ORDER = {"Information": 0, "Warning": 1, "Error": 2}
# [published] MaximumSeverity.Code of a request the ATO accepted in part: some items refused (Error), the rest applied.
# Never an item's own severity, so it is never computed from the items: the answering side says so.
SEVERITY_PARTIAL = "Partial"


def _q(local: str) -> str:
    return f"{{{EVENT_NS}}}{local}"


@dataclass(frozen=True)
class EventItem:
    code: str
    severity: str  # Error, Warning, Information
    short_description: str = ""
    detailed_description: str = ""
    parameters: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (identifier, text)
    locations: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (instance identifier, path)


@dataclass(frozen=True)
class Event:
    maximum_severity: str
    items: tuple[EventItem, ...]


def maximum_severity(items: list[EventItem] | tuple[EventItem, ...]) -> str:
    return max((i.severity for i in items), key=lambda s: _SEVERITY_ORDER.get(s, 2), default="Information")


def build_event(items: list[EventItem], *, partial: bool = False) -> bytes:
    """The event document; ``partial`` for a request accepted in part (MaximumSeverity.Code ``Partial``)."""
    root = etree.Element(_q("Event"), nsmap={None: EVENT_NS})
    etree.SubElement(root, _q("MaximumSeverity.Code")).text = SEVERITY_PARTIAL if partial else maximum_severity(items)
    holder = etree.SubElement(root, _q("EventItems"))
    for item in items:
        element = etree.SubElement(holder, _q("EventItem"))
        etree.SubElement(element, _q("Error.Code")).text = item.code
        etree.SubElement(element, _q("Severity.Code")).text = item.severity
        if item.short_description:
            etree.SubElement(element, _q("Short.Description")).text = item.short_description
        if item.detailed_description:
            etree.SubElement(element, _q("Detailed.Description")).text = item.detailed_description
        if item.parameters:
            parameters = etree.SubElement(element, _q("Parameters"))
            for identifier, text in item.parameters:
                parameter = etree.SubElement(parameters, _q("Parameter"))
                etree.SubElement(parameter, _q("Parameter.Identifier")).text = identifier
                etree.SubElement(parameter, _q("Parameter.Text")).text = text
        if item.locations:
            locations = etree.SubElement(element, _q("Locations"))
            for instance, path in item.locations:
                location = etree.SubElement(locations, _q("Location"))
                etree.SubElement(location, _q("Location.Instance.Identifier")).text = instance
                etree.SubElement(location, _q("Location.Path.Text")).text = path
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def is_event(document: bytes) -> bool:
    """Cheap test on the raw bytes, confirmed by ``parse_event``."""
    return EVENT_NS.encode() in document[:512]


def parse_event(document: bytes | etree._Element) -> Event:
    root = xmlsafe.parse(document) if isinstance(document, bytes) else document
    if root.tag != _q("Event"):
        raise ValueError(f"not an event document: {root.tag}")

    def text(parent: etree._Element, local: str) -> str:
        found = parent.find(_q(local))
        return (found.text or "").strip() if found is not None else ""

    items = tuple(
        EventItem(
            code=text(e, "Error.Code"),
            severity=text(e, "Severity.Code"),
            short_description=text(e, "Short.Description"),
            detailed_description=text(e, "Detailed.Description"),
            parameters=tuple(
                (text(p, "Parameter.Identifier"), text(p, "Parameter.Text")) for p in e.iter(_q("Parameter"))
            ),
            locations=tuple(
                (text(loc, "Location.Instance.Identifier"), text(loc, "Location.Path.Text"))
                for loc in e.iter(_q("Location"))
            ),
        )
        for e in root.iter(_q("EventItem"))
    )
    return Event(maximum_severity=text(root, "MaximumSeverity.Code") or maximum_severity(items), items=items)
