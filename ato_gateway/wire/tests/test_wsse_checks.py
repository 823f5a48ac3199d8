"""Each check of a WS-Security signature on its own, on a small envelope signed here: the whole messages of
test_signatures.py pass every check at once, so a check taken out there went unnoticed while another still
refused. Each damaged signature below is otherwise valid (its SignedInfo re-signed), so that only the check under
test can refuse it, and the refusal's words are asserted: they are what the console and the ATO's error detail show
whoever investigates a refused message."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree

from ato_gateway.wire import CertificateExpired, CertificateUntrusted, SignatureInvalid, keystore, ns, wsse
from ato_gateway.wire.errors import MalformedMessage

from .conftest import Pki

BST_ID = "bst-1"
ATTACHMENT = b"%PDF- the attachment's octets as sent"


def q(namespace: str, local: str) -> str:
    return ns.q(namespace, local)


@dataclass
class Signed:
    envelope: etree._Element
    security: etree._Element
    body: etree._Element
    signature: etree._Element

    def find(self, path: str) -> etree._Element:
        found = self.signature.find(path, namespaces={"ds": ns.DS, "wsse": ns.WSSE, "ec": ns.EC})
        assert found is not None, path
        return found

    @property
    def signed_info(self) -> etree._Element:
        return self.find("ds:SignedInfo")

    def references(self) -> list[etree._Element]:
        return self.signed_info.findall(q(ns.DS, "Reference"))


def envelope(pki: Pki, *, security_text: str = "") -> tuple[etree._Element, etree._Element, etree._Element]:
    token = wsse.bst_xml(wsse.certificate_b64(pki.certificate), BST_ID)
    root = etree.fromstring(
        f'<S12:Envelope xmlns:S12="{ns.SOAP12}" xmlns:wsu="{ns.WSU}" xmlns:wsse="{ns.WSSE}">'
        f"<S12:Header><wsse:Security>{token}{security_text}</wsse:Security></S12:Header>"
        f'<S12:Body wsu:Id="id-body"><Ping xmlns="urn:ping">hello</Ping></S12:Body></S12:Envelope>'.encode()
    )
    header, body = root
    return root, header[0], body


def signed(pki: Pki, *, attachment: bool = False, key_info: str | None = None) -> Signed:
    root, security, body = envelope(pki)
    references = [wsse.xml_reference(body, "#id-body")]
    if attachment:
        references.append(wsse.attachment_reference(ATTACHMENT, "cid:part%40x"))
    signature = wsse.sign(
        security,
        key=pki.key,
        references=references,
        key_info_xml=key_info if key_info is not None else wsse.token_reference_key_info_xml(BST_ID),
    )
    return Signed(root, security, body, signature)


def resign(message: Signed, pki: Pki, *, prefixes: list[str] | None = None, hash_: hashes.HashAlgorithm | None = None):  # type: ignore[no-untyped-def]
    """A new, valid SignatureValue over SignedInfo as it now stands."""
    octets = wsse.exc_c14n(message.signed_info, prefixes)
    value = pki.key.sign(octets, padding.PKCS1v15(), hash_ or hashes.SHA256())
    message.find("ds:SignatureValue").text = base64.b64encode(value).decode()


def redigest(message: Signed, pki: Pki, octets: bytes, *, index: int = 0, method: str = ns.SHA256) -> None:
    reference = message.references()[index]
    reference.find(q(ns.DS, "DigestMethod")).set("Algorithm", method)  # type: ignore[union-attr]
    reference.find(q(ns.DS, "DigestValue")).text = wsse.digest_b64(octets, method)  # type: ignore[union-attr]
    resign(message, pki)


def verify(message: Signed, pki: Pki, *, attachments: dict[str, bytes] | None = None, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("must_cover", [message.body])
    return wsse.verify_message(
        message.envelope, attachments=attachments or {}, trust=kwargs.pop("trust", pki.certificate), **kwargs
    )


def refusal(message: Signed, pki: Pki, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureInvalid) as refused:
        verify(message, pki, **kwargs)
    return str(refused.value)


def set_transforms(reference: etree._Element, algorithms: list[str]) -> None:
    transforms = reference.find(q(ns.DS, "Transforms"))
    assert transforms is not None
    for old in list(transforms):
        transforms.remove(old)
    for algorithm in algorithms:
        etree.SubElement(transforms, q(ns.DS, "Transform"), Algorithm=algorithm)


# --- what verifies ---


def test_a_good_signature_gives_its_signer_references_elements_and_attachments(pki: Pki) -> None:
    message = signed(pki, attachment=True)
    verified = verify(message, pki, attachments={"part@x": ATTACHMENT})
    assert verified.certificate == pki.certificate
    assert verified.elements == [message.body] and verified.elements[0] is message.body
    assert verified.content_ids == {"part@x"}  # the cid: URL's %40 read as @
    body_digest = base64.b64encode(hashlib.sha256(wsse.exc_c14n(message.body)).digest()).decode()
    assert verified.references == [
        wsse.SignedReference("#id-body", (ns.EXC_C14N,), ns.SHA256, body_digest),
        wsse.SignedReference(
            "cid:part%40x",
            (ns.SWA_CONTENT_TRANSFORM,),
            ns.SHA256,
            base64.b64encode(hashlib.sha256(ATTACHMENT).digest()).decode(),
        ),
    ]


def test_values_may_be_wrapped_over_lines(pki: Pki) -> None:
    """base64 in XML is often folded at 64 or 76 characters: whitespace inside a value is not part of it."""
    message = signed(pki)
    for path in ("ds:SignatureValue", "ds:SignedInfo/ds:Reference/ds:DigestValue"):
        element = message.find(path)
        text = element.text or ""
        element.text = "\n " + "\n ".join(text[i : i + 20] for i in range(0, len(text), 20)) + "\n"
    resign(message, pki)
    value = message.find("ds:SignatureValue")
    value.text = "\n".join((value.text or "")[i : i + 30] for i in range(0, len(value.text or ""), 30))
    token = message.security.find(q(ns.WSSE, "BinarySecurityToken"))
    assert token is not None and token.text
    token.text = "\n" + "\n".join(token.text[i : i + 64] for i in range(0, len(token.text), 64)) + "\n"
    verified = verify(message, pki)
    assert verified.certificate == pki.certificate
    assert verified.references[0].digest_value == "".join((message.references()[0][2].text or "").split())


@pytest.mark.parametrize(("method", "hash_"), [(ns.SHA1, hashlib.sha1), (ns.SHA512, hashlib.sha512)])
def test_the_other_digests_of_the_profile_verify(
    pki: Pki, method: str, hash_: Callable[[bytes], hashlib._Hash]
) -> None:
    message = signed(pki)
    redigest(message, pki, wsse.exc_c14n(message.body), method=method)
    [reference] = verify(message, pki).references
    assert reference.digest_method == method
    assert reference.digest_value == base64.b64encode(hash_(wsse.exc_c14n(message.body)).digest()).decode()


def test_rsa_sha1_signatures_verify(pki: Pki) -> None:
    message = signed(pki)
    message.find("ds:SignedInfo/ds:SignatureMethod").set("Algorithm", ns.RSA_SHA1)
    resign(message, pki, hash_=hashes.SHA1())  # noqa: S303 - the profile accepts RSA-SHA1
    assert verify(message, pki).certificate == pki.certificate
    resign(message, pki)  # SHA-256 under a SignatureMethod that says SHA-1
    assert refusal(message, pki) == "the signature value does not verify with the signer's certificate"


def test_the_certificate_may_travel_in_x509data(pki: Pki) -> None:
    message = signed(pki, key_info=wsse.x509_data_key_info_xml(wsse.certificate_b64(pki.certificate)))
    assert verify(message, pki).certificate == pki.certificate


# --- the header and the signature's place ---


def test_the_security_header_must_be_there_once(pki: Pki) -> None:
    message = signed(pki)
    with pytest.raises(SignatureInvalid) as refused:
        wsse.find_security(None)
    assert str(refused.value) == "the message has no SOAP header, so no WS-Security signature"
    header = message.security.getparent()
    assert header is not None
    assert wsse.find_security(header) is message.security
    header.append(etree.Element(q(ns.WSSE, "Security")))
    assert refusal(message, pki) == "expected one wsse:Security header, found 2"
    with pytest.raises(SignatureInvalid, match=r"^expected one wsse:Security header, found 0$"):
        wsse.find_security(etree.Element(q(ns.SOAP12, "Header")))
    header.remove(message.security)
    with pytest.raises(SignatureInvalid) as refused:
        wsse.verify_message(
            etree.fromstring(f'<S12:Envelope xmlns:S12="{ns.SOAP12}"><S12:Body/></S12:Envelope>'.encode()),
            attachments={},
            trust=pki.certificate,
            must_cover=[],
        )
    assert str(refused.value) == "the message has no SOAP header, so no WS-Security signature"


def test_exactly_one_signature_in_the_header(pki: Pki) -> None:
    message = signed(pki)
    message.security.append(deepcopy(message.signature))
    assert refusal(message, pki) == "expected one ds:Signature in wsse:Security, found 2"
    message.security.remove(message.signature)
    message.security.remove(message.security[-1])
    assert refusal(message, pki) == "expected one ds:Signature in wsse:Security, found 0"


def test_an_id_is_unique_in_the_message(pki: Pki) -> None:
    root = etree.fromstring(
        f'<r xmlns:wsu="{ns.WSU}"><a wsu:Id="x" Id="x"/><b ID="y"/><c Id="z"/><d other="w"/></r>'.encode()
    )
    index = wsse.id_index(root)
    assert index == {"x": root[0], "y": root[1], "z": root[2]}  # one element may name itself twice
    root.append(etree.Element("e", ID="z"))
    with pytest.raises(SignatureInvalid) as refused:
        wsse.id_index(root)
    assert str(refused.value) == "the id 'z' occurs more than once in the message"
    message = signed(pki)
    message.envelope.append(etree.Element("copy", {q(ns.WSU, "Id"): "id-body"}))
    assert refusal(message, pki) == "the id 'id-body' occurs more than once in the message"


# --- KeyInfo ---


def key_info_reference(message: Signed) -> etree._Element:
    return message.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference")


def test_keyinfo_must_be_there(pki: Pki) -> None:
    message = signed(pki)
    message.signature.remove(message.find("ds:KeyInfo"))
    assert refusal(message, pki) == "the signature has no KeyInfo"


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("bst-1", "not a same-document reference"),
        ("xbst-1", "not a same-document reference, though it ends in the token's id"),
        ("", "empty"),
        (None, "no URI at all"),
        ("#id-body", "an element that is no BinarySecurityToken"),
        ("#nowhere", "nothing with that id"),
        ("#bst-2", "a BinarySecurityToken outside this header"),
    ],
)
def test_keyinfo_must_refer_to_a_token_of_this_header(pki: Pki, uri: str | None, why: str) -> None:
    message = signed(pki)
    elsewhere = etree.fromstring(wsse.bst_xml(wsse.certificate_b64(pki.certificate), "bst-2").replace(
        "<wsse:", f'<wsse:Bin xmlns:wsse="{ns.WSSE}" xmlns:wsu="{ns.WSU}"><wsse:', 1
    ).replace("</wsse:BinarySecurityToken>", "</wsse:BinarySecurityToken></wsse:Bin>").encode())  # fmt: skip
    message.body.append(elsewhere)  # signed anew below: only KeyInfo's choice is wrong
    redigest(message, pki, wsse.exc_c14n(message.body))
    reference = key_info_reference(message)
    if uri is None:
        del reference.attrib["URI"]
    else:
        reference.set("URI", uri)
    shown = "''" if uri is None else repr(uri)
    assert refusal(message, pki) == f"KeyInfo refers to {shown}, which is not a BinarySecurityToken of this header", why


def test_keyinfo_that_names_no_certificate_is_refused(pki: Pki) -> None:
    message = signed(pki, key_info=f'<ds:KeyName xmlns:ds="{ns.DS}">practice</ds:KeyName>')
    assert refusal(message, pki) == "KeyInfo names no certificate this receiver understands"
    only_data = signed(pki, key_info=f'<ds:X509Data xmlns:ds="{ns.DS}"><ds:X509SubjectName/></ds:X509Data>')
    assert refusal(only_data, pki) == "KeyInfo names no certificate this receiver understands"


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"not a certificate").decode()])
def test_an_unreadable_certificate_is_refused(pki: Pki, text: str) -> None:
    for message in (
        signed(pki, key_info=wsse.x509_data_key_info_xml(text)),
        signed(pki),
    ):
        token = message.security.find(q(ns.WSSE, "BinarySecurityToken"))
        assert token is not None
        token.text = text
        assert refusal(message, pki).startswith("the signer's certificate cannot be read: ")


# --- SignedInfo ---


def test_signedinfo_must_be_there(pki: Pki) -> None:
    message = signed(pki)
    message.signature.remove(message.signed_info)
    assert refusal(message, pki) == "the signature has no SignedInfo"


@pytest.mark.parametrize(
    "algorithm", [None, ns.EXC_C14N_WITH_COMMENTS, "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"]
)
def test_signedinfo_must_use_exclusive_c14n(pki: Pki, algorithm: str | None) -> None:
    message = signed(pki)
    method = message.find("ds:SignedInfo/ds:CanonicalizationMethod")
    if algorithm is None:
        message.signed_info.remove(method)
    else:
        method.set("Algorithm", algorithm)
    resign(message, pki)
    assert refusal(message, pki) == "SignedInfo must be canonicalised with exclusive C14N"


def test_signedinfo_must_name_a_known_signature_method(pki: Pki) -> None:
    message = signed(pki)
    method = message.find("ds:SignedInfo/ds:SignatureMethod")
    method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#dsa-sha1")
    resign(message, pki)
    assert refusal(message, pki) == "unsupported signature algorithm 'http://www.w3.org/2000/09/xmldsig#dsa-sha1'"
    del method.attrib["Algorithm"]
    resign(message, pki)
    assert refusal(message, pki) == "unsupported signature algorithm ''"
    message.signed_info.remove(method)
    resign(message, pki)
    assert refusal(message, pki) == "unsupported signature algorithm ''"


def test_a_signature_with_no_reference_is_refused(pki: Pki) -> None:
    message = signed(pki)
    for reference in message.references():
        message.signed_info.remove(reference)
    resign(message, pki)
    assert refusal(message, pki, must_cover=[]) == "the signature has no references"


def test_the_signature_value_must_be_there_and_base64(pki: Pki) -> None:
    message = signed(pki)
    value = message.find("ds:SignatureValue")
    value.text = "@@@@"
    assert refusal(message, pki) == "the SignatureValue is missing or not base64"
    value.text = None
    assert refusal(message, pki) == "the signature value does not verify with the signer's certificate"
    message.signature.remove(value)
    assert refusal(message, pki) == "the SignatureValue is missing or not base64"


def test_only_rsa_keys_sign(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC signer")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    message = signed(pki, key_info=wsse.x509_data_key_info_xml(wsse.certificate_b64(certificate)))
    assert refusal(message, pki, trust=certificate) == "only RSA signatures are accepted"


def test_inclusive_prefixes_of_signedinfo_are_canonicalised_with_it(pki: Pki) -> None:
    """A signer may list prefixes to keep in SignedInfo's canonical form: the value is over that form, so the
    verifier must canonicalise the same way. ("#default" is read as the default namespace, though lxml's
    canonicalisation renders an unused default namespace neither way.)"""
    message = signed(pki)
    method = message.find("ds:SignedInfo/ds:CanonicalizationMethod")
    etree.SubElement(method, q(ns.EC, "InclusiveNamespaces"), PrefixList="wsse #default")
    plain, listed = wsse.exc_c14n(message.signed_info), wsse.exc_c14n(message.signed_info, ["wsse", ""])
    assert b"xmlns:wsse" in listed and b"xmlns:wsse" not in plain
    resign(message, pki, prefixes=["wsse", ""])
    ids = wsse.id_index(message.envelope)
    assert wsse.verify_signature(message.signature, certificate=pki.certificate, ids=ids)[1] == [message.body]
    resign(message, pki)  # signed without the prefixes it lists
    with pytest.raises(SignatureInvalid, match="does not verify"):
        wsse.verify_signature(message.signature, certificate=pki.certificate, ids=ids)


def test_an_empty_prefix_list_means_none(pki: Pki) -> None:
    message = signed(pki)
    method = message.find("ds:SignedInfo/ds:CanonicalizationMethod")
    inclusive = etree.SubElement(method, q(ns.EC, "InclusiveNamespaces"), PrefixList="  ")
    assert wsse._inclusive_prefixes(method) is None
    del inclusive.attrib["PrefixList"]
    assert wsse._inclusive_prefixes(method) is None
    inclusive.set("PrefixList", "a #default b")
    assert wsse._inclusive_prefixes(method) == ["a", "", "b"]


# --- references ---


def test_a_reference_needs_a_uri_of_a_kind_the_profile_knows(pki: Pki) -> None:
    message = signed(pki)
    [reference] = message.references()
    del reference.attrib["URI"]
    resign(message, pki)
    assert refusal(message, pki) == "a reference has no URI"
    for uri in ("", "#", "http://example.com/x", "id-body"):
        reference.set("URI", uri)
        resign(message, pki)
        assert refusal(message, pki) == f"unsupported reference URI {uri!r}"
    reference.set("URI", "#elsewhere")
    resign(message, pki)
    assert refusal(message, pki) == "the signature refers to #elsewhere, which is not in the message"


@pytest.mark.parametrize("algorithm", [None, "", "http://www.w3.org/2001/04/xmldsig-more#md5"])
def test_a_reference_must_name_a_known_digest(pki: Pki, algorithm: str | None) -> None:
    """None: no DigestMethod at all; "": a DigestMethod without its Algorithm."""
    message = signed(pki)
    [reference] = message.references()
    method = reference.find(q(ns.DS, "DigestMethod"))
    assert method is not None
    if algorithm is None:
        reference.remove(method)
    elif algorithm == "":
        del method.attrib["Algorithm"]
    else:
        method.set("Algorithm", algorithm)
    resign(message, pki)
    shown = repr(algorithm or "")
    assert refusal(message, pki) == f"unsupported digest algorithm {shown} in the reference to #id-body"
    with pytest.raises(SignatureInvalid, match=r"^unsupported digest algorithm urn:x$"):
        wsse.digest_b64(b"", "urn:x")


def test_a_digest_that_does_not_match_names_its_reference(pki: Pki) -> None:
    message = signed(pki)
    [reference] = message.references()
    value = reference.find(q(ns.DS, "DigestValue"))
    assert value is not None
    value.text = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    resign(message, pki)
    assert refusal(message, pki) == "the digest of #id-body does not match: the signed content was changed"
    value.text = None
    resign(message, pki)
    assert refusal(message, pki) == "the digest of #id-body does not match: the signed content was changed"
    reference.remove(value)
    resign(message, pki)
    assert refusal(message, pki) == "the digest of #id-body does not match: the signed content was changed"


def test_an_attachment_reference_needs_its_attachment_and_only_the_swa_transform(pki: Pki) -> None:
    message = signed(pki, attachment=True)
    assert refusal(message, pki) == "the signature refers to attachment cid:part%40x, which the message does not carry"
    carried = {"part@x": ATTACHMENT}
    _, attachment = message.references()
    for algorithms in ([ns.EXC_C14N], [], [ns.SWA_CONTENT_TRANSFORM, ns.EXC_C14N]):
        set_transforms(attachment, algorithms)
        resign(message, pki)
        assert (
            refusal(message, pki, attachments=carried)
            == "attachment reference cid:part%40x must use only the SwA content transform"
        )
    set_transforms(attachment, [ns.SWA_CONTENT_TRANSFORM])
    resign(message, pki)
    assert verify(message, pki, attachments=carried).content_ids == {"part@x"}
    changed = {"part@x": ATTACHMENT + b" "}
    assert refusal(message, pki, attachments=changed) == (
        "the digest of cid:part%40x does not match: the signed content was changed"
    )


def test_every_attachment_must_be_covered(pki: Pki) -> None:
    message = signed(pki, attachment=True)
    carried = {"part@x": ATTACHMENT, "b@x": b"b", "a@x": b"a"}
    assert refusal(message, pki, attachments=carried) == "the signature does not cover attachment(s) a@x, b@x: refused"


def test_each_element_that_must_be_covered_is(pki: Pki) -> None:
    message = signed(pki)
    header = message.security.getparent()
    assert header is not None
    assert refusal(message, pki, must_cover=[message.body, header]) == "the signature does not cover Header: refused"
    twin = deepcopy(message.body)  # equal, but not the element signed
    assert refusal(message, pki, must_cover=[twin]) == "the signature does not cover Body: refused"


# --- transforms of an XML reference ---


@pytest.mark.parametrize(
    "algorithms",
    [
        [],
        [ns.SWA_CONTENT_TRANSFORM],
        [ns.EXC_C14N, ns.EXC_C14N],
        [ns.EXC_C14N_WITH_COMMENTS],
        [ns.EXC_C14N, ns.ENVELOPED_SIGNATURE],
        [ns.ENVELOPED_SIGNATURE],
    ],
)
def test_an_xml_reference_takes_exclusive_c14n_only(pki: Pki, algorithms: list[str]) -> None:
    message = signed(pki)
    set_transforms(message.references()[0], algorithms)
    resign(message, pki)
    shown = (
        [a for a in algorithms if a != ns.ENVELOPED_SIGNATURE]
        if algorithms[:1] == [ns.ENVELOPED_SIGNATURE]
        else algorithms
    )
    assert refusal(message, pki) == (f"unsupported transforms {shown} for an XML reference (exclusive C14N only)")


def test_inclusive_prefixes_of_a_reference_are_used_for_its_digest(pki: Pki) -> None:
    message = signed(pki)
    [reference] = message.references()
    transform = reference.find(f"{q(ns.DS, 'Transforms')}/{q(ns.DS, 'Transform')}")
    assert transform is not None
    etree.SubElement(transform, q(ns.EC, "InclusiveNamespaces"), PrefixList="wsse")
    listed = wsse.exc_c14n(message.body, ["wsse"])
    assert listed != wsse.exc_c14n(message.body)
    redigest(message, pki, listed)
    assert verify(message, pki).elements == [message.body]
    redigest(message, pki, wsse.exc_c14n(message.body))
    assert "does not match" in refusal(message, pki)


def test_a_reference_that_holds_its_own_signature_needs_the_enveloped_transform(pki: Pki) -> None:
    message = signed(pki)
    message.security.set(q(ns.WSU, "Id"), "id-security")
    [reference] = message.references()
    reference.set("URI", "#id-security")
    redigest(message, pki, wsse.exc_c14n(message.security))
    assert refusal(message, pki, must_cover=[]) == (
        "a reference covers its own signature without the enveloped-signature transform"
    )
    message.envelope.set(q(ns.WSU, "Id"), "id-envelope")
    reference.set("URI", "#id-envelope")
    redigest(message, pki, wsse.exc_c14n(message.envelope))
    assert refusal(message, pki, must_cover=[]) == (
        "a reference covers its own signature without the enveloped-signature transform"
    )


def without_signature(element: etree._Element, *, prefixes: list[str] | None = None) -> bytes:
    """The enveloped-signature transform written out another way: serialise, cut the signature's bytes out."""
    copy = etree.fromstring(etree.tostring(element.getroottree().getroot()))
    ids = wsse.id_index(copy)
    target = ids[element.get(q(ns.WSU, "Id")) or ""]
    for found in target.iter(q(ns.DS, "Signature")):
        parent = found.getparent()
        assert parent is not None
        tail = found.tail or ""
        previous = found.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
        parent.remove(found)
        break
    return wsse.exc_c14n(target, prefixes)


@pytest.mark.parametrize(
    ("first", "before"),
    [(False, " between "), (False, None), (True, "before "), (True, None)],
    ids=["after the token's text", "after the token", "first after text", "first"],
)
def test_the_enveloped_transform_leaves_out_the_signature_and_keeps_the_text_after_it(
    pki: Pki, first: bool, before: str | None
) -> None:
    root, security, body = envelope(pki, security_text="")
    security.set(q(ns.WSU, "Id"), "id-security")
    token = security[0]
    if first:
        security.remove(token)
        security.text = before
    else:
        token.tail = before
    spec = wsse.ReferenceSpec("#id-security", (ns.ENVELOPED_SIGNATURE, ns.EXC_C14N), "")
    signature = wsse.sign(
        security,
        key=pki.key,
        references=[spec],
        key_info_xml=wsse.x509_data_key_info_xml(wsse.certificate_b64(pki.certificate)),
        position=0 if first else 1,
    )
    signature.tail = " after"
    etree.SubElement(security, "{urn:x}more").tail = " end"
    message = Signed(root, security, body, signature)
    expected = without_signature(security)
    assert b"after" in expected and b"<ds:Signature" not in expected
    assert f">{before or ''} after<".encode() in expected
    redigest(message, pki, expected)
    verified = wsse.verify_message(root, attachments={}, trust=pki.certificate, must_cover=[security])
    assert verified.elements == [security] and verified.references[0].transforms == (
        ns.ENVELOPED_SIGNATURE,
        ns.EXC_C14N,
    )
    assert security.find(q(ns.DS, "Signature")) is signature and signature.tail == " after"  # the original untouched


def test_the_enveloped_transform_on_an_element_that_does_not_hold_the_signature_is_refused(pki: Pki) -> None:
    message = signed(pki)
    [reference] = message.references()
    set_transforms(reference, [ns.ENVELOPED_SIGNATURE, ns.EXC_C14N])
    resign(message, pki)
    assert refusal(message, pki) == ("the enveloped-signature transform is used on an element that does not hold it")


# --- trust in the signer ---


def test_a_pinned_certificate_is_compared_exactly(pki: Pki) -> None:
    with pytest.raises(CertificateUntrusted) as refused:
        wsse.check_trust(pki.certificate, pki.ato)
    assert str(refused.value) == (
        f"the message is signed by {pki.certificate.subject.rfc4514_string()}, "
        f"not by the expected certificate {pki.ato.subject.rfc4514_string()}"
    )
    wsse.check_trust(pki.ato, pki.ato)


def test_a_trust_function_decides_and_its_reasons_are_kept(pki: Pki) -> None:
    subject = pki.certificate.subject.rfc4514_string()
    wsse.check_trust(pki.certificate, lambda c: None)  # None: nothing against it
    wsse.check_trust(pki.certificate, lambda c: True)
    with pytest.raises(CertificateUntrusted) as refused:
        wsse.check_trust(pki.certificate, lambda c: False)
    assert str(refused.value) == f"the signer's certificate {subject} is not trusted"

    def raising(exc: Exception) -> Callable[[x509.Certificate], bool]:
        def trust(certificate: x509.Certificate) -> bool:
            raise exc

        return trust

    for exc, reason in (
        (ValueError("not issued by this CA"), "not issued by this CA"),
        (TypeError(), "TypeError"),
        (InvalidSignature(), "InvalidSignature"),
    ):
        with pytest.raises(CertificateUntrusted) as refused:
            wsse.check_trust(pki.certificate, raising(exc))
        assert str(refused.value) == f"the signer's certificate {subject} is not trusted: {reason}"
        assert refused.value.__cause__ is exc
    pki.certificate.verify_directly_issued_by(pki.ca)
    with pytest.raises(CertificateUntrusted, match="not trusted: Issuer certificate subject does not match"):
        wsse.check_trust(pki.certificate, lambda c: c.verify_directly_issued_by(pki.ato))
    expired = CertificateExpired("the trust function's own words")
    with pytest.raises(CertificateExpired) as refused:
        wsse.check_trust(pki.certificate, raising(expired))
    assert refused.value is expired
    with pytest.raises(MalformedMessage):
        wsse.check_trust(pki.certificate, raising(MalformedMessage("kept as it is")))
    with pytest.raises(KeyError):
        wsse.check_trust(pki.certificate, raising(KeyError("a bug in the trust function is not hidden")))


def test_validity_is_inclusive_at_both_ends_and_named(pki: Pki) -> None:
    certificate = pki.certificate
    subject = certificate.subject.rfc4514_string()
    wsse.check_validity(certificate, now=certificate.not_valid_after_utc)
    wsse.check_validity(certificate, now=certificate.not_valid_before_utc)
    with pytest.raises(CertificateExpired) as refused:
        wsse.check_validity(certificate, now=certificate.not_valid_after_utc + timedelta(microseconds=1))
    assert str(refused.value) == (f"the certificate {subject} expired on {certificate.not_valid_after_utc.isoformat()}")
    with pytest.raises(CertificateExpired) as refused:
        wsse.check_validity(certificate, now=certificate.not_valid_before_utc - timedelta(seconds=1))
    assert str(refused.value) == (
        f"the certificate {subject} is not valid before {certificate.not_valid_before_utc.isoformat()}"
    )


def test_without_a_moment_given_validity_is_checked_now(pki: Pki) -> None:
    old = keystore.issue_certificate(
        ca_key=pki.ca_key,
        ca_certificate=pki.ca,
        public_key=pki.key.public_key(),
        common_name="Old",
        not_before=datetime.now(UTC) - timedelta(days=10),
        valid_for=timedelta(days=1),
    )
    future = keystore.issue_certificate(
        ca_key=pki.ca_key,
        ca_certificate=pki.ca,
        public_key=pki.key.public_key(),
        common_name="Future",
        not_before=datetime.now(UTC) + timedelta(days=1),
    )
    for certificate, words in ((old, "expired on"), (future, "not valid before")):
        with pytest.raises(CertificateExpired, match=words):
            wsse.check_validity(certificate)
        with pytest.raises(CertificateExpired, match=words):
            wsse.check_trust(certificate, certificate)  # pinned, and still out of date
    wsse.check_validity(pki.certificate)


def test_trust_is_checked_at_the_moment_given(pki: Pki) -> None:
    message = signed(pki)
    late = pki.certificate.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(CertificateExpired):
        verify(message, pki, now=late)
    with pytest.raises(CertificateUntrusted, match="not by the expected certificate"):
        verify(message, pki, trust=pki.ato)


# --- building ---


def test_what_we_build_escapes_its_attributes_and_is_what_we_sign(pki: Pki) -> None:
    assert wsse._esc_attr('a&b<c"d>') == "a&amp;b&lt;c&quot;d>"
    built = wsse.bst_xml("QUJD", 'i&<"d')
    token = etree.fromstring(f'<w xmlns:wsse="{ns.WSSE}" xmlns:wsu="{ns.WSU}">{built}</w>'.encode())[0]
    assert token.get(q(ns.WSU, "Id")) == 'i&<"d' and token.text == "QUJD"
    assert (token.get("EncodingType"), token.get("ValueType")) == (ns.BASE64_BINARY, ns.X509V3)
    reference = etree.fromstring(wsse.token_reference_key_info_xml('b&"').encode())[0]
    assert (reference.get("URI"), reference.get("ValueType")) == ('#b&"', ns.X509V3)
    spec = wsse.ReferenceSpec('#a&"b', ("urn:t&1", "urn:t2"), "RElH", ns.SHA1)
    info = etree.fromstring(wsse.signed_info_xml([spec]).encode())
    assert wsse.exc_c14n(info) == wsse.signed_info_xml([spec]).encode()  # the bytes signed are canonical already
    [ref] = info.findall(q(ns.DS, "Reference"))
    assert ref.get("URI") == '#a&"b'
    assert [t.get("Algorithm") for t in ref.iter(q(ns.DS, "Transform"))] == ["urn:t&1", "urn:t2"]
    assert ref.find(q(ns.DS, "DigestMethod")).get("Algorithm") == ns.SHA1  # type: ignore[union-attr]
    assert ref.find(q(ns.DS, "DigestValue")).text == "RElH"  # type: ignore[union-attr]
    assert info.find(q(ns.DS, "SignatureMethod")).get("Algorithm") == ns.RSA_SHA256  # type: ignore[union-attr]
    der = pki.certificate.public_bytes(Encoding.DER)
    assert wsse.certificate_b64(pki.certificate) == base64.b64encode(der).decode()


def test_a_signature_goes_where_it_is_asked(pki: Pki) -> None:
    _, security, body = envelope(pki)
    references = [wsse.xml_reference(body, "#id-body")]
    key_info = wsse.token_reference_key_info_xml(BST_ID)
    appended = wsse.sign(security, key=pki.key, references=references, key_info_xml=key_info)
    assert security[-1] is appended
    first = wsse.sign(security, key=pki.key, references=references, key_info_xml=key_info, position=0)
    assert security[0] is first and [e.tag for e in first] == [
        q(ns.DS, "SignedInfo"),
        q(ns.DS, "SignatureValue"),
        q(ns.DS, "KeyInfo"),
    ]
    assert first.find(f"{q(ns.DS, 'KeyInfo')}/{q(ns.WSSE, 'SecurityTokenReference')}") is not None


def test_exclusive_c14n_leaves_out_unused_namespaces_and_comments() -> None:
    """Trees built by our own code (not through xmlsafe) may hold comments: the signed form never does."""
    root = etree.fromstring(b'<a xmlns:u="urn:u" xmlns:v="urn:v"><b v:x="1"><!-- c --><c/></b></a>')
    assert wsse.exc_c14n(root[0]) == b'<b xmlns:v="urn:v" v:x="1"><c></c></b>'
    assert wsse.exc_c14n(root[0], ["u"]) == b'<b xmlns:u="urn:u" xmlns:v="urn:v" v:x="1"><c></c></b>'
    assert wsse.exc_c14n(root[0], iter(["u"])) == wsse.exc_c14n(root[0], ["u"])  # any iterable of prefixes
    assert wsse.exc_c14n(root[0], []) == wsse.exc_c14n(root[0])
    assert wsse.digest_b64(b"abc") == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()


def test_a_transform_without_its_algorithm_is_named_as_empty(pki: Pki) -> None:
    message = signed(pki)
    transform = message.references()[0].find(f"{q(ns.DS, 'Transforms')}/{q(ns.DS, 'Transform')}")
    assert transform is not None
    del transform.attrib["Algorithm"]
    resign(message, pki)
    assert refusal(message, pki) == "unsupported transforms [''] for an XML reference (exclusive C14N only)"


def test_an_id_of_one_character_is_referred_to(pki: Pki) -> None:
    message = signed(pki)
    message.body.set(q(ns.WSU, "Id"), "b")
    [reference] = message.references()
    reference.set("URI", "#b")
    redigest(message, pki, wsse.exc_c14n(message.body))
    assert verify(message, pki).references[0].uri == "#b"


def test_signedinfo_as_built_has_no_text_between_its_elements() -> None:
    """ds:SignedInfo and ds:Transforms take elements only (the XML Signature schema)."""
    spec = wsse.ReferenceSpec("#a", (ns.ENVELOPED_SIGNATURE, ns.EXC_C14N), "RElH")
    info = etree.fromstring(wsse.signed_info_xml([spec, spec]).encode())
    assert all(not (e.text or "").strip() for e in info.iter() if len(e)), "text inside an element of elements"
    assert all(e.tail is None for e in info.iter())
    assert len(info.findall(f"{q(ns.DS, 'Reference')}/{q(ns.DS, 'Transforms')}/{q(ns.DS, 'Transform')}")) == 4


def test_the_enveloped_transform_renders_inclusive_prefixes_declared_above_the_element(pki: Pki) -> None:
    """Canonicalisation works on the element in its document: a prefix that InclusiveNamespaces names and an
    ancestor declares (S12, declared on the Envelope) is rendered, as another implementation renders it."""
    root, security, body = envelope(pki)
    security.set(q(ns.WSU, "Id"), "id-security")
    signature = wsse.sign(
        security,
        key=pki.key,
        references=[wsse.ReferenceSpec("#id-security", (ns.ENVELOPED_SIGNATURE, ns.EXC_C14N), "")],
        key_info_xml=wsse.x509_data_key_info_xml(wsse.certificate_b64(pki.certificate)),
    )
    message = Signed(root, security, body, signature)
    transform = message.references()[0].findall(f"{q(ns.DS, 'Transforms')}/{q(ns.DS, 'Transform')}")[1]
    etree.SubElement(transform, q(ns.EC, "InclusiveNamespaces"), PrefixList="S12")
    expected = without_signature(security, prefixes=["S12"])
    assert f'xmlns:S12="{ns.SOAP12}"'.encode() in expected
    redigest(message, pki, expected)
    verified = wsse.verify_message(root, attachments={}, trust=pki.certificate, must_cover=[security])
    assert verified.elements == [security]
