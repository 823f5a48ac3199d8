"""Machine credentials: importing an ATO keystore or PKCS#12 file (the private key re-sealed under our own key ring),
choosing the one that signs, and refusing to sign with none or an expired one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from lxml import etree

from ato_gateway.models import (
    MachineCredential,
)
from ato_gateway.wire import errors as wire_errors
from ato_gateway.wire import keystore
from portal.audit import audit_record
from portal.models import Practice, User

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class CredentialProblem(Exception):
    """A credential file cannot be used; the message says why in words an admin can act on."""


def credential_import(
    *,
    practice: Practice,
    data: bytes,
    filename: str,
    password: str,
    actor: User | None,
) -> list[MachineCredential]:
    """Import every credential in an ATO keystore.xml, or the one in a PKCS#12 file. The private key is
    re-encrypted under our own key ring; the file's password is used once and not kept."""
    try:
        if data.lstrip()[:1] == b"<":
            entries = [
                keystore.load_credential(data, password, credential_id=info.id)
                for info in keystore.list_credentials(data)
            ]
        else:
            entries = [keystore.load_pkcs12(data, password)]
    except wire_errors.WireError as exc:
        raise CredentialProblem(f"{filename}: {exc}") from exc
    except (ValueError, etree.XMLSyntaxError) as exc:
        raise CredentialProblem(f"{filename} is neither an ATO keystore.xml nor a PKCS#12 file.") from exc
    if not entries:
        raise CredentialProblem("The file holds no machine credential.")
    imported = []
    with transaction.atomic():
        for entry in entries:
            fingerprint = entry.certificate.fingerprint(hashes.SHA256()).hex()
            credential, created = MachineCredential.objects.get_or_create(
                practice=practice,
                fingerprint_sha256=fingerprint,
                defaults={
                    "legal_name": entry.info.legal_name,
                    "abn": entry.info.abn,
                    "serial_number": str(entry.info.serial_number),
                    "not_before": entry.info.not_before,
                    "not_after": entry.info.not_after,
                    "certificate_chain_pem": "".join(
                        c.public_bytes(serialization.Encoding.PEM).decode() for c in entry.chain
                    ),
                    "private_key_encrypted": MachineCredential.encrypt_private_key(entry.private_key),
                    "source": "pkcs12" if data.lstrip()[:1] != b"<" else "keystore",
                    "imported_by": actor,
                },
            )
            if created:
                audit_record(
                    "credential.imported",
                    actor=actor,
                    practice=practice,
                    target=credential,
                    details={"serial": credential.serial_number, "not_after": credential.not_after.isoformat()},
                )
            imported.append(credential)
        if not MachineCredential.objects.filter(practice=practice, is_selected=True).exists():
            usable = [c for c in imported if c.is_current]
            if usable:
                credential_select(credential=usable[0], actor=actor)
    cache.delete(f"credential-banner-{practice.pk}")
    return imported


def credential_select(*, credential: MachineCredential, actor: User | None) -> None:
    with transaction.atomic():
        MachineCredential.objects.filter(practice=credential.practice, is_selected=True).update(is_selected=False)
        MachineCredential.objects.filter(pk=credential.pk).update(is_selected=True)
        transaction.on_commit(lambda: cache.delete(f"credential-banner-{credential.practice_id}"))
        audit_record("credential.selected", actor=actor, practice=credential.practice, target=credential)


def credential_for_signing(practice: Practice) -> MachineCredential:
    credential = MachineCredential.objects.filter(practice=practice, is_selected=True).first()
    if credential is None:
        raise wire_errors.WireError(
            "No machine credential is selected for this practice. A practice admin imports one under Gateway → "
            "Machine credentials.",
            permanent=True,
        )
    if credential.is_expired:
        raise wire_errors.WireError(
            f"The machine credential {credential.serial_number} expired on "
            f"{timezone.localtime(credential.not_after):%d %B %Y}; the ATO "
            "would refuse anything signed with it. Import a renewed credential from the ATO's Relationship "
            "Authorisation Manager.",
            permanent=True,
        )
    return credential
