"""Business documents as dataclasses: encode to XML, decode from XML, validate against the repository's XSDs, and
read long lists item by item.

The XSDs under ``schemas/`` are the contract; each dataclass mirrors one of them field by field (``xml("Name")`` in
the order of the ``xs:sequence``), and the golden-file tests prove that the two agree. The mapping is written here
rather than generated (xsdata would generate classes from the XSDs) because list responses must be read with a
streaming parse that frees each item as it goes, under the same hardened parser options as every other message,
and a generated binding offers neither; the mapping itself is about a hundred lines.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import types
import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, Union

from lxml import etree

from .. import registry, xmlsafe
from ..errors import MalformedMessage, UnsafeXML, WireError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


class DocumentError(WireError):
    """A business document that is not well-formed, not the expected one, or not valid against its XSD."""

    ebms_code = "EBMS:0004"
    permanent = True

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


def xml(name: str, *, default: Any = dataclasses.MISSING, default_factory: Any = dataclasses.MISSING) -> Any:
    """A field mapped to the child element ``name``."""
    metadata = {"xml": name}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Document:
    """A root document. Subclasses are dataclasses that set ``ROOT`` and ``SERVICE_ACTION`` (the registry key of
    the action whose request or response this is); ``NAMESPACE`` defaults to that action's document namespace."""

    ROOT: ClassVar[str]
    SERVICE_ACTION: ClassVar[str]
    NAMESPACE: ClassVar[str]
    SCHEMA: ClassVar[str]  # file name under schemas/, default: the lower-case service name + .xsd

    def problems(self) -> list[str]:
        """What a sender must not ask although the XSD allows it (a limit the ATO enforces on the whole request):
        the portal refuses to record such a request, rather than have the ATO refuse it. The stand-in ATO decodes
        without this check, so that it can refuse such a request as the ATO does."""
        return []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        action = registry.get(cls.SERVICE_ACTION)
        if "NAMESPACE" not in cls.__dict__:
            cls.NAMESPACE = action.document_namespace
        if "SCHEMA" not in cls.__dict__:
            cls.SCHEMA = f"{action.service.lower()}.xsd"
        key = (cls.NAMESPACE, cls.ROOT)
        if key in _ROOTS and _ROOTS[key] is not cls:
            raise TypeError(f"two document classes for {{{cls.NAMESPACE}}}{cls.ROOT}")
        _ROOTS[key] = cls
        _BY_ACTION[(cls.SERVICE_ACTION, cls.ROOT)] = cls


_ROOTS: dict[tuple[str, str], type[Document]] = {}
_BY_ACTION: dict[tuple[str, str], type[Document]] = {}


def document_class(service_action: str, root: str) -> type[Document] | None:
    """The class of an action's document by its root element name (the registry's request/response name)."""
    return _BY_ACTION.get((service_action, root))


D = TypeVar("D", bound=Document)
T = TypeVar("T")


# --- schemas ---


@functools.cache
def schema(filename: str) -> etree.XMLSchema:
    """The compiled XSD. Our own files, but parsed with the network off all the same."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / filename), parser))


def _validate(cls: type[Document], root: etree._Element) -> None:
    xsd = schema(cls.SCHEMA)
    if not xsd.validate(root):
        details = [f"line {e.line}: {e.message}" for e in xsd.error_log]  # type: ignore[attr-defined]
        raise DocumentError(f"{cls.ROOT} is not valid against {cls.SCHEMA}: {details[0]}", details)


# --- field mapping ---


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    tag: str  # local name
    kind: str  # "scalar", "dataclass"
    type: Any
    many: bool
    optional: bool


def _fields(cls: Any) -> tuple[_Field, ...]:
    """The mapped fields of a document class (or a part of one), worked out once per class."""
    return _fields_of(cls)


@functools.cache
def _fields_of(cls: Any) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if "xml" not in f.metadata:
            continue
        hint = hints[f.name]
        optional = many = False
        if typing.get_origin(hint) in (Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional, hint = True, args[0]
        if typing.get_origin(hint) is list:
            many, hint = True, typing.get_args(hint)[0]
        kind = "dataclass" if dataclasses.is_dataclass(hint) else "scalar"
        if kind == "scalar" and hint not in (str, int, bool, date, datetime, Decimal, bytes):
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported type {hint!r}")
        out.append(_Field(f.name, f.metadata["xml"], kind, hint, many, optional))
    return tuple(out)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _scalar(kind: Any, text: str) -> Any:
    if kind is str:
        return text
    if kind is bool:
        return text.strip() in ("true", "1")
    if kind is bytes:
        return base64.b64decode("".join(text.split()), validate=True)
    if kind is int:
        return int(text)
    if kind is Decimal:
        try:
            return Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal: {text!r}") from exc
    if kind is datetime:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return date.fromisoformat(text.strip())


def _build(parent: etree._Element, obj: Any, ns: str) -> None:
    for f in _fields(type(obj)):
        value = getattr(obj, f.name)
        for item in value if f.many else ([] if value is None else [value]):
            child = etree.SubElement(parent, f"{{{ns}}}{f.tag}")
            if f.kind == "dataclass":
                _build(child, item, ns)
            else:
                child.text = _text(item)


def _read(cls: type[T], element: etree._Element, ns: str) -> T:
    values: dict[str, Any] = {}
    by_tag = {f"{{{ns}}}{f.tag}": f for f in _fields(cls)}
    for child in element:
        f = by_tag.get(child.tag) if isinstance(child.tag, str) else None
        if f is None:
            continue  # receive leniently: an element a later version added
        value = _read(f.type, child, ns) if f.kind == "dataclass" else _scalar(f.type, child.text or "")
        if f.many:
            values.setdefault(f.name, []).append(value)
        else:
            values[f.name] = value
    for f in _fields(cls):
        if f.many and f.name not in values:
            values[f.name] = []
    return cls(**values)


# --- the public functions ---


def to_element(doc: Document) -> etree._Element:
    root = etree.Element(f"{{{doc.NAMESPACE}}}{doc.ROOT}", nsmap={None: doc.NAMESPACE})
    _build(root, doc, doc.NAMESPACE)
    return root


def encode(doc: Document, *, validate: bool = True) -> bytes:
    root = to_element(doc)
    if validate:
        _validate(type(doc), root)
    return XML_DECLARATION + etree.tostring(root, encoding="utf-8")


def pretty(doc: Document) -> bytes:
    """The document indented, as the golden files keep it (encode() writes it without whitespace)."""
    encoded = encode(doc)
    return XML_DECLARATION + etree.tostring(etree.fromstring(encoded), pretty_print=True, encoding="utf-8")


def compact(data: bytes) -> bytes:
    """An indented document (a golden file) as encode() writes it: whitespace between elements removed."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return XML_DECLARATION + etree.tostring(etree.fromstring(data, parser), encoding="utf-8")


def _parse(data: bytes | str) -> etree._Element:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        return xmlsafe.parse(raw)
    except (MalformedMessage, UnsafeXML) as exc:
        raise DocumentError(str(exc)) from exc


def class_for(root: etree._Element) -> type[Document]:
    qname = etree.QName(root)
    cls = _ROOTS.get((qname.namespace or "", qname.localname))
    if cls is None:
        raise DocumentError(f"unknown business document {root.tag}")
    return cls


def decode(cls: type[D], data: bytes | str) -> D:
    root = _parse(data)
    if root.tag != f"{{{cls.NAMESPACE}}}{cls.ROOT}":
        raise DocumentError(f"expected {cls.ROOT} in {cls.NAMESPACE}, got {root.tag}")
    _validate(cls, root)
    return _read(cls, root, cls.NAMESPACE)


def decode_any(data: bytes | str) -> Document:
    root = _parse(data)
    cls = class_for(root)
    _validate(cls, root)
    return _read(cls, root, cls.NAMESPACE)


class Stream(Generic[D, T]):
    """Items of one list field, parsed one at a time and freed after use; ``document`` (the other fields, with
    that list empty) is set once the iteration has finished. The whole document is validated as it streams."""

    def __init__(self, cls: type[D], data: bytes | str, field: str) -> None:
        self.cls = cls
        self.data = data.encode("utf-8") if isinstance(data, str) else data
        fields = {f.name: f for f in _fields(cls)}
        if field not in fields or not fields[field].many:
            raise TypeError(f"{cls.__name__}.{field} is not a list field")
        self.field = fields[field]
        self.document: D | None = None
        self.count = 0

    def __iter__(self) -> Iterator[T]:
        if len(self.data) > xmlsafe.MAX_XML_BYTES:
            raise DocumentError(f"document of {len(self.data)} bytes exceeds {xmlsafe.MAX_XML_BYTES}")
        if b"<!DOCTYPE" in self.data or b"<!ENTITY" in self.data:
            raise DocumentError("XML with a DOCTYPE or entity declaration is refused")
        ns = self.cls.NAMESPACE
        item_tag = f"{{{ns}}}{self.field.tag}"
        events = etree.iterparse(
            io.BytesIO(self.data),
            events=("end",),
            remove_comments=True,  # read values as xmlsafe.parse does (see there)
            remove_pis=True,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            schema=schema(self.cls.SCHEMA),
        )
        root: etree._Element | None = None
        checked = False
        try:
            for _event, element in events:
                if not checked:
                    checked = True
                    if element.getroottree().docinfo.doctype:
                        # The byte check above misses a DOCTYPE in another encoding (UTF-16); xmlsafe.parse refuses
                        # it after parsing too. (Depth needs no check of its own: the XSD refuses the first element
                        # out of place, and libxml2 stops at 256 levels without huge_tree.)
                        raise DocumentError("XML with a DOCTYPE is refused")
                parent = element.getparent()
                if parent is None:
                    root = element
                elif element.tag == item_tag and parent.getparent() is None:
                    self._refuse_if_invalid(events)
                    item = _read(self.field.type, element, ns)
                    element.clear()
                    parent.remove(element)  # the item is done: keep the tree at the size of one item
                    self.count += 1
                    yield item
        except etree.XMLSyntaxError as exc:  # also raised for a schema violation found while streaming
            raise DocumentError(f"{self.cls.ROOT} is not valid: {exc}") from exc
        assert root is not None
        if root.tag != f"{{{ns}}}{self.cls.ROOT}":
            raise DocumentError(f"expected {self.cls.ROOT}, got {root.tag}")
        self.document = _read(self.cls, root, ns)

    def _refuse_if_invalid(self, events: Any) -> None:
        """The parser reads ahead a chunk at a time and validates as it reads, but raises a schema violation only
        when it next reads; its error log already holds it. Checked before each item, so an item the schema
        refuses (or one after it) is never handed out."""
        found = [e for e in events.error_log if e.level >= etree.ErrorLevels.ERROR]
        if found:
            details = [f"line {e.line}: {e.message}" for e in found]
            raise DocumentError(f"{self.cls.ROOT} is not valid: {found[0].message}", details)


def stream(cls: type[D], data: bytes | str, field: str) -> Stream[D, Any]:
    return Stream(cls, data, field)
