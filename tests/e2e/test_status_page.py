"""Stakeholders read the status page in a real browser, without logging in."""

import pytest
from playwright.sync_api import expect

from incidents import services
from incidents.models import Audience, Source

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_page_shows_outage_and_public_update(page, live_server, declare, api_service):
    incident = declare(title="db-7 failover broke checkout", services=[api_service])
    page.goto(f"{live_server.url}/status/")
    # Declared, but nothing written for the public yet: not on the page.
    expect(page.locator("#overall")).to_have_text("All systems operational")
    expect(page.locator(f"#{incident.reference}")).to_have_count(0)

    services.incident_update_details(
        incident=incident, public_title="Checkout errors", source=Source.ADMIN
    )
    services.status_update_post(
        incident=incident,
        audience=Audience.PUBLIC,
        summary="We are rolling back a deploy.",
        source=Source.ADMIN,
    )
    page.reload()  # at once, although the first visit was cached
    expect(page.locator("#overall")).to_have_text("Major outage")
    card = page.locator(f"#{incident.reference}")
    expect(card).to_contain_text("Checkout errors")
    expect(card).to_contain_text("Investigating")
    expect(card).to_contain_text("We are rolling back a deploy.")
    expect(page.locator("body")).not_to_contain_text("db-7")
    service = page.locator("li.service", has_text="Public API")
    expect(service).to_contain_text("Major outage")
    # 90 day bars, drawn by the stylesheet: today's is red, and says why on hover.
    bars = service.locator("ol.uptime li.day")
    expect(bars).to_have_count(90)
    expect(bars.last).to_have_class("day major_outage")
    assert "Checkout errors" in bars.last.get_attribute("title")
    assert bars.last.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(185, 28, 28)"
