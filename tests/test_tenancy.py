"""Every URL pattern, walked as an admin of another practice (every capability, none of our data): objects of
ours give 404 (or 403), never a page, and list pages show none of our data. A new URL with an id must be added
to OBJECTS below, or this test fails."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_otp_webauthn.models import WebAuthnCredential

from ato_gateway.models import MachineCredential, OutboxMessage
from ato_gateway.wire import keystore
from clients.models import ClientAccount, ImportJob
from communications.models import Letter, PreferenceAuthority, PreferenceBulk, PreferenceChange, SyncRun
from demographics.models import AddressBulk, AddressChange, BankChange, DriftAlert, DriftRun, ProfileChange
from portal.models import User
from portal.sealing import seal
from relationships.models import AtoRequest, BulkJob, BulkRow
from relationships.reconcile.models import Drift, ReconcileRun, RelationshipAlert
from superannuation.models import (
    Batch,
    Member,
    MemberImport,
    ReasonableStep,
    Report,
    SuperFund,
    Transaction,
    WorkItem,
)
from tests.conftest import add_clients

pytestmark = pytest.mark.django_db

# Which of our objects each parametrised view takes, by argument name.
OBJECTS: dict[str, dict[str, str]] = {
    "portal:staff_detail": {"pk": "staff"},
    "portal:staff_deactivate": {"pk": "staff"},
    "portal:staff_reactivate": {"pk": "staff"},
    "portal:staff_reset_mfa": {"pk": "staff"},
    "portal:staff_invite_resend": {"pk": "staff"},
    "portal:staff_invite_withdraw": {"pk": "staff"},
    "portal:staff_reset_password": {"pk": "staff"},
    "portal:passkey_remove": {"pk": "passkey"},
    "clients:staff_groups": {"pk": "staff"},
    "clients:detail": {"pk": "client"},
    "clients:edit": {"pk": "client"},
    "clients:reveal_tfn": {"pk": "client"},
    "clients:account_add": {"pk": "client"},
    "clients:client_groups": {"pk": "client"},
    "clients:account_roles": {"pk": "client", "account_pk": "account"},
    "clients:import_detail": {"pk": "import"},
    "clients:import_progress": {"pk": "import"},
    "clients:import_start": {"pk": "import"},
    "ato_gateway:message": {"pk": "message"},
    "ato_gateway:resend": {"pk": "message"},
    "ato_gateway:credential_select": {"pk": "credential"},
    "relationships:request": {"pk": "atorequest"},
    "relationships:validate": {"pk": "atorequest"},
    "relationships:submit": {"pk": "atorequest"},
    "relationships:remove_confirm": {"pk": "atorequest"},
    "relationships:client_tab": {"pk": "client"},
    "relationships:remove": {"pk": "client"},
    "relationships:bulk_detail": {"pk": "bulk"},
    "relationships:bulk_progress": {"pk": "bulk"},
    "relationships:bulk_submit": {"pk": "bulk"},
    "relationships:bulk_check_again": {"pk": "bulk"},
    "relationships:bulk_report": {"pk": "bulk"},
    "relationships:reconcile_run": {"pk": "run"},
    "relationships:reconcile_progress": {"pk": "run"},
    "relationships:reconcile_resume": {"pk": "run"},
    "relationships:reconcile_report_csv": {"pk": "run"},
    "relationships:reconcile_alert_read": {"pk": "alert"},
    "communications:letter": {"pk": "letter"},
    "communications:letter_pdf": {"pk": "letter"},
    "communications:letter_refetch": {"pk": "letter"},
    "communications:letter_told": {"pk": "letter"},
    "communications:client_tab": {"pk": "client"},
    "communications:sync": {"pk": "commsync"},
    "communications:sync_progress": {"pk": "commsync"},
    "communications:sync_resume": {"pk": "commsync"},
    "communications:preference_start": {"pk": "client"},
    "communications:preference_change": {"pk": "prefchange"},
    "communications:preference_submit": {"pk": "prefchange"},
    "communications:preference_authority": {"pk": "prefchange"},
    "communications:preference_bulk": {"pk": "prefbulk"},
    "communications:preference_bulk_resume": {"pk": "prefbulk"},
    "demographics:client_tab": {"pk": "client"},
    "demographics:section": {"pk": "client"},
    "demographics:ask": {"pk": "client"},
    "demographics:address_start": {"pk": "client"},
    "demographics:bank_propose": {"pk": "client"},
    "demographics:address_change": {"pk": "addresschange"},
    "demographics:address_submit": {"pk": "addresschange"},
    "demographics:address_bulk": {"pk": "addressbulk"},
    "demographics:bank_change": {"pk": "bankchange"},
    "demographics:bank_question": {"pk": "bankchange"},
    "demographics:bank_callback": {"pk": "bankchange"},
    "demographics:bank_approve": {"pk": "bankchange"},
    "demographics:watch": {"pk": "driftrun"},
    "demographics:alert_read": {"pk": "driftalert"},
    "demographics:details_start": {"pk": "client"},
    "demographics:contact_start": {"pk": "client"},
    "demographics:profile_change": {"pk": "profilechange"},
    "demographics:profile_submit": {"pk": "profilechange"},
    "superannuation:fund": {"pk": "superfund"},
    "superannuation:import_upload": {"pk": "superfund"},
    "superannuation:export": {"pk": "superfund"},
    "superannuation:report_csv": {"pk": "superfund"},
    "superannuation:foundation": {"pk": "superfund"},
    "superannuation:realtime": {"pk": "superfund"},
    "superannuation:import": {"pk": "superimport"},
    "superannuation:import_progress": {"pk": "superimport"},
    "superannuation:member": {"pk": "supermember"},
    "superannuation:member_edit": {"pk": "supermember"},
    "superannuation:member_status": {"pk": "supermember"},
    "superannuation:reveal_tfn": {"pk": "supermember"},
    "superannuation:report": {"pk": "superreport"},
    "superannuation:report_progress": {"pk": "superreport"},
    "superannuation:batch": {"pk": "superbatch"},
    "superannuation:batch_resubmit": {"pk": "superbatch"},
    "superannuation:item": {"pk": "superitem"},
    "superannuation:item_apply": {"pk": "superitem"},
    "superannuation:item_step": {"pk": "superitem"},
    "superannuation:item_extension": {"pk": "superitem"},
    "superannuation:item_remediation": {"pk": "superitem"},
    "superannuation:item_resolve": {"pk": "superitem"},
    "superannuation:client_tab": {"pk": "client"},
    "superannuation:fund_edit": {"pk": "superfund"},
    "superannuation:member_add": {"pk": "superfund"},
    "superannuation:step_evidence": {"pk": "superstep"},
}
# Objects of the whole practice rather than of a group's clients, for the walk as staff restricted to groups.
PRACTICE_WIDE = {"run", "commsync", "addressbulk", "driftrun", "prefbulk"}
# Parametrised but not practice objects: an invitation token is a bearer secret, checked by its own test.
NOT_SCOPED = {"portal:accept_invite"}


def patterns(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            yield from patterns(entry, namespace)
        elif entry.name:
            yield f"{prefix}{entry.name}", entry


@pytest.fixture
def ours(practice, admin, agent):
    client = add_clients(practice, 1)[0]
    account = ClientAccount.objects.create(client=client, kind="activity_statement", branch="001")
    job = ImportJob.objects.create(
        practice=practice,
        created_by=agent,
        filename="ours.csv",
        content="kind,family_name\nindividual,Ours\n",
        total_rows=1,
    )
    message = OutboxMessage(
        practice=practice,
        service="PING",
        action="Ping.001.00",
        message_id="ours@test",
        conversation_id="c",
        subject_repr="OURS ping",
    )
    message.set_payloads([("PingRequest", "<PingRequest/>")])
    message.save()
    now = datetime.now(UTC)
    ca_key = keystore.new_rsa_key()
    ca_cert = keystore.make_ca(ca_key, "Test CA", now=now)
    key = keystore.new_rsa_key()
    cert = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca_cert, public_key=key.public_key(), common_name="Ours", abn=practice.abn
    )
    credential = MachineCredential.objects.create(
        practice=practice,
        legal_name="Ours",
        abn=practice.abn,
        serial_number="1",
        fingerprint_sha256="ab",
        not_before=now,
        not_after=now + timedelta(days=365),
        certificate_chain_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_encrypted=MachineCredential.encrypt_private_key(key),
    )
    atorequest = AtoRequest(practice=practice, created_by=agent, kind="search", family_name="OURS")
    atorequest.seal_identifier("ABN", practice.abn)
    atorequest.save()
    bulk = BulkJob.objects.create(practice=practice, created_by=agent, filename="ours.csv", status="review")
    BulkRow.objects.create(job=bulk, row_number=2, label="OURS", problem="The row needs a TFN, an ABN or a WPN.")
    run = ReconcileRun.objects.create(practice=practice, status="failed", error="OURS run")
    drift = Drift.objects.create(run=run, client=client, kind="lost_access", name="OURS", details="OURS drift")
    alert = RelationshipAlert.objects.create(practice=practice, user=admin, drift=drift, client=client, text="OURS")
    letter = Letter.objects.create(
        practice=practice,
        ato_id="1",
        name="OURS",
        client=client,
        kind="NOA",
        title="OURS letter",
        issued=datetime.now(UTC).date(),
        document_state="failed",
        document_error="OURS document",
    )
    commsync = SyncRun.objects.create(
        practice=practice, status="failed", error="OURS sync", issued_from=letter.issued, issued_to=letter.issued
    )
    address = {"line1": "1 OURS St", "locality": "SYDNEY", "state": "NSW", "postcode": "2000"}
    addressbulk = AddressBulk.objects.create(practice=practice, created_by=agent, **address)
    addresschange = AddressChange.objects.create(
        practice=practice, client=client, bulk=addressbulk, created_by=agent, status="validated", **address
    )
    bankchange = BankChange.objects.create(
        practice=practice,
        client=client,
        status="proposed",
        bsb="062000",
        number="12345678",
        account_name="OURS",
        proposed_by=agent,
        proposed_at=now,
        expires_at=now + timedelta(days=7),
        numbers_on_file=["0299990000"],
    )
    prefbulk = PreferenceBulk.objects.create(practice=practice, created_by=agent, channel="POST")
    prefchange = PreferenceChange.objects.create(practice=practice, bulk=prefbulk, client=client, status="validated")
    driftrun = DriftRun.objects.create(practice=practice)
    driftalert = DriftAlert.objects.create(practice=practice, client=client, service="bank", urgent=True)
    profilechange = ProfileChange.objects.create(
        practice=practice, client=client, kind="contact", created_by=agent, values={"family_name": "OURS"}
    )
    super_objects = _super_objects(practice, agent, now)
    passkey = WebAuthnCredential.objects.create(
        user=agent, name="OURS passkey", credential_id=b"ours", public_key=b"ours", sign_count=0
    )
    return {
        **super_objects,
        "passkey": passkey,
        "addresschange": addresschange,
        "addressbulk": addressbulk,
        "prefbulk": prefbulk,
        "prefchange": prefchange,
        "bankchange": bankchange,
        "driftrun": driftrun,
        "driftalert": driftalert,
        "profilechange": profilechange,
        "letter": letter,
        "commsync": commsync,
        "run": run,
        "alert": alert,
        "bulk": bulk,
        "atorequest": atorequest,
        "staff": agent,
        "client": client,
        "account": account,
        "import": job,
        "message": message,
        "credential": credential,
    }


def _super_objects(practice, agent, now):
    """A fund of ours with no client of the register: only the practice's unrestricted staff reach it."""
    fund = SuperFund.objects.create(practice=practice, name="OURS fund", abn=practice.abn, usi=f"{practice.abn}001")
    member = Member.objects.create(
        fund=fund, member_number="OURS1", family_name="OURSMEMBER", date_of_birth=now.date(), opened_on=now.date()
    )
    report = Report.objects.create(fund=fund, kind="foundation", total=1, built_at=now, finished_at=now)
    batch = Batch.objects.create(fund=fund, kind="foundation", report=report, state="answered", size=1)
    sent = Transaction.objects.create(
        member=member,
        batch=batch,
        transaction_id="OURS-T1",
        event="opened",
        event_on=now.date(),
        tfn_given=False,
        processed=False,
        meaning="validation_error",
        answered_at=now,
    )
    item = WorkItem.objects.create(
        fund=fund, member=member, transaction=sent, meaning=sent.meaning, aware_at=now, due_on=now.date()
    )
    upload = MemberImport.objects.create(fund=fund, uploaded_by=agent, filename="ours-members.csv")
    step = ReasonableStep.objects.create(
        item=item, contact="OURS contact", found="OURS found", evidence_name="ours.pdf", evidence=seal("OURS letter")
    )
    return {
        "superstep": step,
        "superfund": fund,
        "supermember": member,
        "superreport": report,
        "superbatch": batch,
        "superitem": item,
        "superimport": upload,
    }


def test_every_pattern_with_an_id_is_covered():
    parametrised = {name for name, p in patterns() if p.pattern.converters}
    assert parametrised - NOT_SCOPED == set(OBJECTS), "add the new URL to OBJECTS"


def test_foreign_ids_give_404(ours, outsider, login):
    http = login(outsider)
    for name, args in OBJECTS.items():
        url = reverse(name, kwargs={arg: ours[kind].pk for arg, kind in args.items()})
        get = http.get(url)
        post = http.post(url, {"role": "read_only", "roles": ["GST"], "kind": "income_tax", "restricted": "on"})
        assert get.status_code in (403, 404, 405), f"GET {name}: {get.status_code}"
        assert post.status_code in (403, 404), f"POST {name}: {post.status_code}"
    agent: User = ours["staff"]
    agent.refresh_from_db()
    assert agent.is_active and agent.role == "agent" and not agent.restricted_to_groups
    assert agent.has_usable_password()
    assert ours["client"].accounts.count() == 1 and ours["import"].status == "uploaded"
    assert not MachineCredential.objects.get(pk=ours["credential"].pk).is_selected
    assert OutboxMessage.objects.get(pk=ours["message"].pk).status == "pending"
    assert ReconcileRun.objects.get(pk=ours["run"].pk).status == "failed"
    assert RelationshipAlert.objects.get(pk=ours["alert"].pk).read_at is None
    letter = Letter.objects.get(pk=ours["letter"].pk)
    assert (letter.state, letter.document_state, letter.owner_id) == ("new", "failed", None)
    assert SyncRun.objects.get(pk=ours["commsync"].pk).status == "failed"
    assert AddressChange.objects.get(pk=ours["addresschange"].pk).submit_question_id is None
    assert PreferenceChange.objects.get(pk=ours["prefchange"].pk).submit_question_id is None
    assert not PreferenceAuthority.objects.exists()
    bankchange = BankChange.objects.get(pk=ours["bankchange"].pk)
    assert (bankchange.called_at, bankchange.approved_at) == (None, None)
    assert WorkItem.objects.get(pk=ours["superitem"].pk).state == "open"
    assert not ours["superfund"].reports.exclude(pk=ours["superreport"].pk).exists()
    assert WebAuthnCredential.objects.filter(pk=ours["passkey"].pk).exists()


def shows(body: str, needle: str) -> bool:
    """The needle as a word of the page, not inside another word. A short one, "bob" (our agent's username), is
    found inside the 64 random letters and digits of a CSRF token: 0.024% of tokens hold it, and the walk below is
    served about 70 tokens, so about one walk in sixty failed with nothing leaked."""
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", body) is not None


def test_a_needle_is_found_as_a_word_only():
    token = '<input type="hidden" name="csrfmiddlewaretoken" value="x7QbobK2">'
    assert not shows(token, "bob")
    assert shows("<dd>bob</dd>", "bob") and shows("Bob Tester, bob", "bob") and shows("bob", "bob")
    assert shows("sent ours@test.", "ours@test") and not shows("ours@testing", "ours@test")


def test_list_pages_show_nothing_of_ours(ours, outsider, login):
    http = login(outsider)
    client = ours["client"]
    needles = [client.display_name, client.abn, ours["staff"].username, "ours.csv", "OURS ping", "ours@test"]
    needles += ["OURS run", "OURS drift", "OURS letter", "OURS sync", "OURS document", "OURS fund", "OURSMEMBER"]
    for name, pattern in patterns():
        if pattern.pattern.converters or name in ("portal:logout", "portal:login", "healthz"):
            continue
        response = http.get(reverse(name))
        assert response.status_code in (200, 302, 405), f"{name}: {response.status_code}"
        body = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
        for needle in needles:
            assert not shows(body, needle), f"{name} shows {needle!r} to another practice"
    search = http.get(reverse("clients:list"), {"q": client.reveal_tfn()})
    assert list(search.context["clients"]) == []


def _attempts(message: OutboxMessage, outcomes: list[str], at: datetime) -> None:
    from ato_gateway.models import MessageAttempt

    MessageAttempt.objects.bulk_create(
        MessageAttempt(message=message, number=n, started_at=at, outcome=outcome, error_code="HTTP:503")
        for n, outcome in enumerate(outcomes, start=1)
    )


def test_ato_health_counts_only_the_practice_s_own_traffic(ours, admin, outsider, login):
    """Practice A's 29 attempts (one failed) and its last success are not in practice B's health panel, and B's
    own three failures are: B's banner goes up for B alone, and says no figures."""
    now = datetime.now(UTC)
    _attempts(ours["message"], ["ok"] * 28 + ["transient"], now - timedelta(minutes=2))
    theirs = OutboxMessage(
        practice=outsider.practice, service="PING", action="Ping.001.00", message_id="theirs@test", conversation_id="t"
    )
    theirs.set_payloads([("PingRequest", "<PingRequest/>")])
    theirs.save()
    _attempts(theirs, ["transient"] * 5, now - timedelta(minutes=1))

    console = login(outsider).get(reverse("ato_gateway:console"))
    health = console.context["health"]
    assert (health.attempts, health.failures, health.last_success, health.failing) == (5, 5, None, True)
    body = console.content.decode()
    assert "5 attempts in the last 10 minutes, 5 failed." in body
    assert "Last success: none yet." in body
    assert "29 attempts" not in body
    banners = [text for level, text in console.context["banners"] if "ATO is not answering" in text]
    assert len(banners) == 1 and not any(ch.isdigit() for ch in banners[0])

    ours_console = login(admin).get(reverse("ato_gateway:console"))
    mine = ours_console.context["health"]
    assert (mine.attempts, mine.failures, mine.failing) == (29, 1, False)
    assert mine.last_success is not None
    assert not [text for _, text in ours_console.context["banners"] if "ATO is not answering" in text]


@pytest.fixture
def restricted(practice):
    """An agent of our own practice restricted to a group that holds none of our objects' clients."""
    from clients.models import ClientGroup
    from portal.capabilities import Role
    from tests.conftest import make_user

    user = make_user(practice, "gina", Role.AGENT)
    user.restricted_to_groups = True
    user.save(update_fields=["restricted_to_groups"])
    ClientGroup.objects.create(practice=practice, name="Other group").staff.add(user)
    return user


def test_foreign_ids_give_404_to_staff_restricted_to_another_group(ours, restricted, login):
    """The same walk as an agent of the practice restricted to another group: none of these objects is theirs."""
    http = login(restricted)
    for name, args in OBJECTS.items():
        url = reverse(name, kwargs={arg: ours[kind].pk for arg, kind in args.items()})
        if set(args.values()) & PRACTICE_WIDE:
            # The practice's own reconciliation belongs to no group: its pages may open, showing only what the
            # person's groups hold.
            page = http.get(url)
            body = (b"".join(page.streaming_content) if page.streaming else page.content).decode()
            assert "OURS drift" not in body and ours["client"].display_name not in body, f"GET {name} shows ours"
            continue
        get = http.get(url)
        post = http.post(url, {"role": "read_only", "roles": ["GST"], "kind": "income_tax", "restricted": "on"})
        assert get.status_code in (403, 404, 405), f"GET {name}: {get.status_code}"
        assert post.status_code in (403, 404), f"POST {name}: {post.status_code}"
    assert ours["client"].accounts.count() == 1 and ours["import"].status == "uploaded"
    assert OutboxMessage.objects.get(pk=ours["message"].pk).status == "pending"


def test_list_pages_show_nothing_of_another_group_to_restricted_staff(ours, restricted, login):
    http = login(restricted)
    client = ours["client"]
    needles = [client.display_name, client.abn, "ours.csv", "OURS ping", "ours@test", "OURS drift", "OURS fund"]
    for name, pattern in patterns():
        if pattern.pattern.converters or name in ("portal:logout", "portal:login", "healthz"):
            continue
        response = http.get(reverse(name))
        assert response.status_code in (200, 302, 403, 405), f"{name}: {response.status_code}"
        body = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
        for needle in needles:
            assert needle not in body, f"{name} shows {needle!r} to staff restricted to another group"
