"""A paged responder acknowledges from the link in the page, in a real browser, without
signing in."""

import pytest
from playwright.sync_api import expect

from incidents.models import Incident, Source, Status
from oncall.models import Page
from oncall.services import paging

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_link_in_a_page_acknowledges_it_and_the_incident(page, live_server, declare, responder):
    incident = declare(title="Checkout returns 502")
    [paged] = paging.page_people(
        incident=incident,
        users=[responder],
        reason=Page.Reason.MANUAL,
        why="by hand",
        source=Source.API,
    ).pages
    link = live_server.url + paging.ack_link(paged).split("127.0.0.1:8000", 1)[-1]

    page.goto(link)
    expect(page.locator("h1")).to_have_text("Acknowledge the page")
    expect(page.locator(".facts")).to_contain_text(incident.reference)
    expect(page.locator(".facts")).to_contain_text("Checkout returns 502")
    page.click("#acknowledge")
    expect(page.locator("#outcome")).to_contain_text("stops paging")

    paged.refresh_from_db()
    assert paged.acknowledged_via == "link"
    assert Incident.objects.get(pk=incident.pk).status == Status.INVESTIGATING

    # The same link again changes nothing and says who answered.
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Already acknowledged")
    expect(page.locator("#acknowledge")).to_have_count(0)
