"""The acknowledge link in a page: opening it shows what the page is about and changes
nothing; its button acknowledges; an expired, reused or forged link changes nothing and
says why."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.models import Status, TimelineEvent
from oncall.services.paging import ack_link, ack_token


def ack_path(page) -> str:
    return ack_link(page).removeprefix(settings.SITE_URL)


@pytest.fixture
def page(declare, responder, page_by_hand):
    incident = declare(title="Checkout returns 502")
    [page] = page_by_hand(incident, responder, why="as technical lead").pages
    return page


@pytest.mark.django_db
def test_opening_the_link_shows_the_page_and_acknowledges_nothing(client, page):
    response = client.get(ack_path(page))
    assert response.status_code == 200
    body = response.content.decode()
    assert page.incident.reference in body and "SEV1" in body
    assert "Checkout returns 502" in body
    assert "bob, as technical lead" in body
    assert 'id="acknowledge"' in body and "csrfmiddlewaretoken" in body
    page.refresh_from_db()
    page.incident.refresh_from_db()
    assert page.acknowledged_at is None
    assert page.incident.status == Status.DECLARED


@pytest.mark.django_db
def test_pressing_acknowledge_acknowledges_the_page_and_the_incident(client, page, responder):
    response = client.post(ack_path(page))
    assert response.status_code == 200
    assert "Page acknowledged" in response.content.decode()
    page.refresh_from_db()
    assert page.acknowledged_at is not None and page.acknowledged_via == "link"
    assert page.next_step_at is None
    incident = page.incident
    incident.refresh_from_db()
    assert incident.status == Status.INVESTIGATING
    assert incident.acknowledged_at is not None
    said = TimelineEvent.objects.filter(incident=incident, kind="paging").values_list(
        "summary", flat=True
    )
    assert "bob acknowledged the page (link)" in said


@pytest.mark.django_db
def test_the_form_needs_its_csrf_token(page):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(ack_path(page)).status_code == 403
    page.refresh_from_db()
    assert page.acknowledged_at is None

    form = browser.get(ack_path(page)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    done = browser.post(ack_path(page), {"csrfmiddlewaretoken": token})
    assert done.status_code == 200
    page.refresh_from_db()
    assert page.acknowledged_at is not None


@pytest.mark.django_db
def test_a_reused_link_says_who_acknowledged_and_when_and_changes_nothing(client, page):
    with time_machine.travel("2026-04-01 08:15Z", tick=False):
        client.post(ack_path(page))
    page.refresh_from_db()
    events = TimelineEvent.objects.filter(incident=page.incident).count()

    for method in (client.get, client.post):
        again = method(ack_path(page))
        assert again.status_code == 409
        body = again.content.decode()
        assert "already acknowledged by bob at 2026-04-01 08:15 UTC" in body
        assert 'id="acknowledge"' not in body
    acknowledged_at = page.acknowledged_at
    page.refresh_from_db()
    assert page.acknowledged_at == acknowledged_at
    assert TimelineEvent.objects.filter(incident=page.incident).count() == events


@pytest.mark.django_db
def test_an_expired_link_is_refused_with_410_and_changes_nothing(
    client, declare, responder, page_by_hand
):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        [page] = page_by_hand(declare(), responder).pages
        path = ack_path(page)
        clock.shift(timedelta(hours=settings.ONCALL_ACK_LINK_HOURS, minutes=1))
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 410
            assert "expired" in response.content.decode()
    page.refresh_from_db()
    assert page.acknowledged_at is None


@pytest.mark.django_db
def test_a_tampered_link_is_refused_with_400_and_changes_nothing(client, page):
    token = ack_token(page)
    value, signature = token.rsplit(":", 1)
    forged = f"{value}:{'A' * len(signature)}"
    for method in (client.get, client.post):
        response = method(reverse("oncall:acknowledge", args=[forged]))
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    # Another page's number under this page's signature is no key either.
    other = reverse("oncall:acknowledge", args=[f"{page.pk + 1}:{signature}"])
    assert client.post(other).status_code == 400
    page.refresh_from_db()
    assert page.acknowledged_at is None


@pytest.mark.django_db
def test_the_link_of_a_confidential_incident_does_not_show_its_title(
    client, declare, security_type, responder, page_by_hand
):
    incident = declare(
        title="Credential stuffing on login", incident_type=security_type, confidential=True
    )
    [page] = page_by_hand(incident, responder).pages
    body = client.get(ack_path(page)).content.decode()
    assert incident.reference in body
    assert "Credential stuffing" not in body
    assert "Confidential" in body


@pytest.mark.django_db
def test_pages_opened_from_a_link_are_not_cached_or_indexed(client, page):
    response = client.get(ack_path(page))
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert 'content="noindex' in response.content.decode()
