"""When the client must be told: a letter the ATO sent to the practice (the client's preference, else the practice
default, else the ATO's own default, the agent's inbox) is one to pass on; the practice records when, how and by
whom the client was told, and the inbox lists the letters not passed on yet. The preferences are the ATO's
answers to COMMPREF Get, asked through the real gateway and stand-in ATO."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.db import transaction
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from ato_gateway import api
from ato_gateway.api import Question
from ato_gateway.wire.documents import cc, commpref
from ato_gateway.wire.documents.common import ClientIdentifier
from clients.models import Client
from communications import services, views
from communications.models import (
    DecidedBy,
    Destination,
    Destinations,
    Letter,
    Preference,
    SyncPage,
    SyncRun,
    SyncStatus,
    ToldHow,
    category_of,
)
from communications.tests.support import client_from_ato, letter
from communications.tests.test_sync import TODAY, covered, finished, taxpayer
from portal.models import AuditEvent, Practice, User
from tests.ato_fixtures import AGENT_TAN, Ato
from tests.gateway_fixtures import pump
from tests.questions import fabricate_question

Login = Callable[[User], HttpClient]


@pytest.fixture
def few_letters(ato: Ato) -> Ato:
    """Thirty clients with two letters each; some clients have a preference of their own (paper or email)."""
    ato.regenerate(
        seed=11,
        taxpayers=200,
        agents=[
            {
                "tan": AGENT_TAN,
                "abn": "53004085616",
                "name": ato.practice.name,
                "kind": "TAX",
                "clients": 30,
                "letters_per_client": 2,
            },
        ],
    )
    return ato


def _own_preferences(ato: Ato) -> dict[int, str]:
    rows = ato.query(
        "SELECT p.taxpayer_id, p.channel FROM reg_preferences p JOIN reg_agents a ON a.id = p.agent_id "
        "WHERE a.tan = ? AND p.taxpayer_id IS NOT NULL",
        AGENT_TAN,
    )
    return {row["taxpayer_id"]: row["channel"] for row in rows}


def _settled(questions: list[Question]) -> Callable[[], bool]:
    return lambda: all(q.is_settled for q in Question.objects.filter(pk__in=[q.pk for q in questions]))


@pytest.mark.django_db(transaction=True)
def test_letters_the_ato_sent_to_the_practice_are_the_ones_to_pass_on(
    few_letters: Ato, admin: User, agent: User, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    ato = few_letters
    monkeypatch.setattr(views, "PAGE", 1000)  # every letter on one page
    # The practice default sends letters to the agent's inbox, so every client without its own is one to tell.
    assert ato.result(commpref.SubmitRequest(channel="ELEC")).ok
    own = _own_preferences(ato)
    by_letter = covered(ato)
    taxpayers = sorted({row["taxpayer_id"] for row in by_letter})
    with_own = [t for t in taxpayers if own.get(t) in ("POST", "EMAIL")][:2]
    following = [t for t in taxpayers if t not in own][:3]
    assert with_own and following
    clients = {t: client_from_ato(ato.practice, taxpayer(ato, t)) for t in with_own + following}

    questions = services.preferences_refresh(user=admin, clients=clients.values())
    assert len(questions) == 1 + len(clients)
    pump(_settled(questions), timeout=60)
    assert Preference.objects.get(client=None).channel == "ELEC"
    for t, client in clients.items():
        held = Preference.objects.get(client=client)
        assert (held.channel, held.own) == ((own[t], True) if t in with_own else ("ELEC", False))

    run = finished(services.sync_start(practice=ato.practice, actor=admin, today=TODAY))
    assert run.error == ""
    letters = list(Letter.objects.all())
    assert letters
    for got in letters:
        sent_to_client = got.client_id in {clients[t].pk for t in with_own}
        assert got.to_practice is not sent_to_client, got.title

    viewer = login(agent)
    untold = viewer.get(reverse("communications:inbox"), {"told": "no"})
    assert {x.pk for x in untold.context["letters"]} == {x.pk for x in letters if x.to_practice}
    assert "To pass on" in untold.content.decode()

    one = next(x for x in letters if x.client_id == clients[following[0]].pk)
    told_on = TODAY if timezone.localdate() >= TODAY else timezone.localdate()
    response = viewer.post(
        reverse("communications:letter_told", args=[one.pk]),
        {"on": told_on.isoformat(), "how": ToldHow.EMAIL, "by": str(agent.pk)},
    )
    assert response.status_code == 302
    one.refresh_from_db()
    assert (one.told_on, one.told_how, one.told_by_id) == (told_on, ToldHow.EMAIL, agent.pk)
    untold = viewer.get(reverse("communications:inbox"), {"told": "no"})
    assert one.pk not in {x.pk for x in untold.context["letters"]}
    told = viewer.get(reverse("communications:inbox"), {"told": "yes"})
    assert [x.pk for x in told.context["letters"]] == [one.pk]
    event = AuditEvent.objects.get(action="communications.client_told")
    assert event.actor_id == agent.pk and event.details["how"] == ToldHow.EMAIL

    # The client changes to paper at the ATO: its letters not passed on yet stop being the practice's to pass on;
    # the one passed on keeps its record.
    moved = clients[following[0]]
    assert ato.result(commpref.SubmitRequest(client=ClientIdentifier.of(tfn=moved.reveal_tfn()), channel="POST")).ok
    again = services.preferences_refresh(user=admin, clients=[moved])
    pump(_settled(again), timeout=60)
    assert not Letter.objects.filter(client=moved, told_on__isnull=True, to_practice=True).exists()
    one.refresh_from_db()
    assert one.to_practice and one.told_on == told_on


@pytest.fixture
def sent_to_practice(practice: Practice) -> Letter:
    return letter(practice, title="Notice of assessment 2026", issued=timezone.localdate() - timedelta(days=3))


@pytest.mark.django_db
def test_a_letter_sent_to_the_practice_says_it_must_be_passed_on_and_records_it(
    sent_to_practice: Letter, agent: User, admin: User, login: Login
) -> None:
    viewer = login(agent)
    page = viewer.get(reverse("communications:letter", args=[sent_to_practice.pk])).content.decode()
    assert "Not told yet" in page and "Record that the client was told" in page
    today = timezone.localdate()
    response = viewer.post(
        reverse("communications:letter_told", args=[sent_to_practice.pk]),
        {"on": today.isoformat(), "how": ToldHow.PHONE, "by": str(admin.pk)},
    )
    assert response.status_code == 302
    page = viewer.get(reverse("communications:letter", args=[sent_to_practice.pk])).content.decode()
    assert f"Told on {today:%-d %B %Y}, by phone, by {admin.display_name}" in page
    assert "Record that the client was told" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("days", "how", "words"),
    [
        (1, ToldHow.EMAIL, "between the letter"),  # tomorrow
        (-10, ToldHow.EMAIL, "between the letter"),  # before the letter was issued
        (0, "pigeon", "Select a valid choice"),
    ],
)
def test_a_told_date_outside_the_letters_life_or_an_unknown_way_is_refused(
    sent_to_practice: Letter, agent: User, login: Login, days: int, how: str, words: str
) -> None:
    on = timezone.localdate() + timedelta(days=days)
    response = login(agent).post(
        reverse("communications:letter_told", args=[sent_to_practice.pk]),
        {"on": on.isoformat(), "how": how, "by": str(agent.pk)},
    )
    assert response.status_code == 400 and words in response.content.decode()
    sent_to_practice.refresh_from_db()
    assert sent_to_practice.told_on is None and not AuditEvent.objects.filter(action="communications.client_told")


@pytest.mark.django_db
def test_read_only_staff_and_other_practices_cannot_record_it(
    sent_to_practice: Letter, reader: User, outsider: User, login: Login
) -> None:
    data = {"on": date.today().isoformat(), "how": ToldHow.EMAIL, "by": str(reader.pk)}
    assert (
        login(reader).post(reverse("communications:letter_told", args=[sent_to_practice.pk]), data).status_code == 403
    )
    url = reverse("communications:letter_told", args=[sent_to_practice.pk])
    assert login(outsider).post(url, data).status_code == 404
    sent_to_practice.refresh_from_db()
    assert sent_to_practice.told_on is None


@pytest.mark.django_db
def test_letters_of_unknown_destination_are_to_pass_on_and_a_default_answer_moves_them(
    practice: Practice, admin: User
) -> None:
    """Before the ATO has been asked, a letter counts as sent to the practice (the ATO's own default): the safe
    side. A practice default of paper then moves every letter of a client without its own preference."""
    own_client = Client.objects.create(practice=practice, organisation_name="Acme Pty Ltd", kind="company")
    follower = Client.objects.create(practice=practice, organisation_name="Zen Trust", kind="trust")
    Preference.objects.create(practice=practice, client=own_client, channel="ELEC", own=True)
    mine, theirs, unmatched = (
        letter(practice, client=own_client),
        letter(practice, client=follower),
        letter(practice),
    )
    sent = services._sent_to_practice(practice, [own_client.pk, follower.pk])
    assert sent(own_client.pk, "ITX") and sent(follower.pk, "ITX") and sent(None, "ITX")
    question = _default_answer(practice, admin, "POST")
    with transaction.atomic():
        services.on_preference(question, api.reply(question))
    for held, expected in ((mine, True), (theirs, False), (unmatched, False)):
        held.refresh_from_db()
        assert held.to_practice is expected


def _default_answer(practice: Practice, admin: User, channel: str) -> Question:
    return fabricate_question(
        practice=practice,
        by=admin,
        purpose=services.PREFERENCE_PURPOSE,
        request=commpref.GetRequest(),
        response=commpref.GetResponse(commpref.Preference(channel=channel, practice_default=True)),
        about=api.Subject(services.PREFERENCE_SUBJECT, "default", "The practice default"),
    )


# --- per category: the letter's type names its category, and the preference for that category decides ---


def _answer(
    channel: str, *, own: dict[str, str] | None = None, default: dict[str, str] | None = None
) -> commpref.Preference:
    """A COMMPREF answer as the stand-in gives it: every category, each either the client's own (``own``) or the
    practice default's (``default``, else ``channel``)."""
    own, default = own or {}, default or {}
    return commpref.Preference(
        channel=channel,
        practice_default=not own,
        categories=[
            commpref.CategoryPreference(
                category=code,
                channel=own.get(code) or default.get(code) or channel,
                practice_default=code not in own,
            )
            for code in commpref.CATEGORIES
        ],
    )


def _client(practice: Practice, name: str, tfn: str = "") -> Client:
    client = Client(practice=practice, organisation_name=name, kind="company")
    if tfn:
        client.set_tfn(tfn)
    client.save()
    return client


def _to_practice(*letters: Letter) -> list[bool]:
    return [Letter.objects.get(pk=held.pk).to_practice for held in letters]


@pytest.mark.django_db
def test_each_category_of_letters_goes_where_the_clients_own_preference_for_it_else_the_default_sends_it(
    practice: Practice,
) -> None:
    acme, zen = _client(practice, "Acme Pty Ltd"), _client(practice, "Zen Pty Ltd")
    a_noa, a_asr, a_debt, a_aud, a_odd = (
        letter(practice, client=acme, kind=k) for k in ("NOA", "ASR", "DEBT", "AUD", "XYZ")
    )
    z_noa, z_asr = letter(practice, client=zen, kind="NOA"), letter(practice, client=zen, kind="ASR")
    u_noa, u_asr = letter(practice, kind="NOA"), letter(practice, kind="ASR")
    told = letter(practice, client=zen, kind="ASR", told_on=timezone.localdate(), told_how=ToldHow.EMAIL)

    # The practice default sends activity statement letters by post, the rest to the practice; Acme's own
    # preference sends its income tax letters by post (its other categories follow the default).
    services.preference_keep(practice, None, _answer("ELEC", default={"AS": "POST"}))
    services.preference_keep(practice, acme.pk, _answer("ELEC", own={"ITX": "POST"}, default={"AS": "POST"}))
    assert _to_practice(a_noa, a_asr, a_debt, a_aud, a_odd) == [False, False, True, True, True]
    assert _to_practice(z_noa, z_asr, u_noa, u_asr, told) == [True, False, True, False, True]

    # The default changes: activity statements to the practice, income tax by email. Acme's own income tax
    # preference holds; everything that follows the default moves; the letter already passed on keeps its record.
    services.preference_keep(practice, None, _answer("ELEC", default={"ITX": "EMAIL"}))
    assert _to_practice(a_noa, a_asr, a_debt, a_aud, a_odd) == [False, True, True, True, True]
    assert _to_practice(z_noa, z_asr, u_noa, u_asr, told) == [False, True, False, True, True]

    # Acme goes back to the default for everything: its income tax letters follow the default's email.
    services.preference_keep(practice, acme.pk, _answer("ELEC", default={"ITX": "EMAIL"}))
    assert _to_practice(a_noa) == [False]
    destinations = Destinations.held(practice, [acme.pk, zen.pk])
    assert destinations.of(acme.pk, "ITX") == Destination("ITX", "EMAIL", "", DecidedBy.DEFAULT)
    services.preference_keep(
        practice, zen.pk, commpref.Preference(channel="POST", practice_default=False)
    )  # an answer naming no categories: all its own
    assert _to_practice(z_noa, z_asr, told) == [False, False, True]
    assert Destinations.held(practice, [zen.pk]).of(zen.pk, "DEBT").decided_by == DecidedBy.CLIENT


@pytest.mark.django_db
def test_without_any_preference_known_every_letter_is_to_pass_on_by_the_atos_default(practice: Practice) -> None:
    acme = _client(practice, "Acme Pty Ltd")
    sent = services._sent_to_practice(practice, [acme.pk])
    assert all(sent(client, code) for client in (acme.pk, None) for code in commpref.CATEGORIES)
    assert Destinations.held(practice, [acme.pk]).of(acme.pk, "AS").decided_by == DecidedBy.ATO
    assert [category_of(k) for k in ("NOA", "ASR", "DEBT", "PPA", "AUD", "REV", "NEW")] == [
        "ITX",
        "AS",
        "DEBT",
        "DEBT",
        "GEN",
        "GEN",
        "GEN",
    ]


class _Stream(list[cc.Communication]):
    """A page read as the gateway streams it: its letters, then the rest of the document (no continuation)."""

    def __init__(self, page: cc.ListResponse) -> None:
        super().__init__(page.communications)
        self.document = cc.ListResponse()


@pytest.mark.django_db
def test_the_sync_stores_each_letter_where_the_preference_for_its_category_sends_it(
    practice: Practice, admin: User
) -> None:
    acme = _client(practice, "Acme Pty Ltd", tfn="123456782")
    services.preference_keep(practice, acme.pk, _answer("ELEC", own={"ITX": "POST"}))
    run = SyncRun.objects.create(practice=practice, started_by=admin, issued_from=TODAY, issued_to=TODAY)
    page = cc.ListResponse(
        communications=[
            cc.Communication(
                id=f"L{kind}", client=ClientIdentifier.of(tfn="123456782"), kind=kind, title=kind, issued=TODAY
            )
            for kind in ("NOA", "ASR", "PPA")
        ]
    )
    question = fabricate_question(
        practice=practice,
        by=admin,
        purpose=services.LIST_PURPOSE,
        request=cc.ListRequest(issued_from=TODAY, issued_to=TODAY),
        response=page,
        about=api.Subject(services.SUBJECT, str(run.pk), "page"),
    )
    SyncRun.objects.filter(pk=run.pk).update(current_question=question)
    with transaction.atomic():
        services.on_list_page(question, api.Reply(document=None, items=[], stream=_Stream(page)))  # type: ignore[arg-type]
    for read in SyncPage.objects.filter(run=run):  # what the page's storing job does
        assert services.sync_page_store(page_id=read.pk)
    assert SyncRun.objects.get(pk=run.pk).status == SyncStatus.DONE
    stored = dict(Letter.objects.values_list("kind", "to_practice"))
    assert stored == {"NOA": False, "ASR": True, "PPA": True}


@pytest.mark.django_db
def test_the_letters_to_pass_on_and_a_letters_page_say_their_category_and_what_sends_them_to_the_practice(
    practice: Practice, agent: User, login: Login
) -> None:
    acme = _client(practice, "Acme Pty Ltd")
    debt, assessment = letter(practice, client=acme, kind="DEBT"), letter(practice, kind="NOA")
    letter(practice, client=acme, kind="ASR")  # by post: not the practice's to pass on
    services.preference_keep(practice, None, _answer("ELEC", default={"AS": "POST"}))
    services.preference_keep(practice, acme.pk, _answer("ELEC", own={"DEBT": "ELEC", "ITX": "POST"}))
    viewer = login(agent)
    page = viewer.get(reverse("communications:inbox"), {"told": "no"})
    assert [x.pk for x in page.context["letters"]] == [assessment.pk, debt.pk]
    why = [str(page.context["destinations"][x.pk]) for x in page.context["letters"]]
    assert why == [
        "Income tax: to the practice's online inbox, by the practice default",
        "Debt and payment plans: to the practice's online inbox, by the client's own preference",
    ]
    html = page.content.decode()
    assert "Why the practice must pass it on" in html and why[1].replace("'", "&#x27;") in html
    assert "Why the practice must pass it on" not in viewer.get(reverse("communications:inbox")).content.decode()
    shown = viewer.get(reverse("communications:letter", args=[debt.pk])).content.decode()
    assert 'data-testid="category">Debt and payment plans<' in shown
    assert (
        "To the practice&#x27;s online inbox (the client gets no notice from the ATO): set by the client&#x27;s own "
        "preference for debt and payment plans"
    ) in shown
