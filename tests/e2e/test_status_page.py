"""Stakeholders read the status page in a real browser, without logging in."""

import pytest
from playwright.sync_api import expect

from incidents import services
from incidents.models import Audience, Source

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_page_shows_outage_and_public_update(page, live_server, declare, api_service):
    incident = declare(title="Checkout returns 502", services=[api_service])
    services.status_update_post(
        incident=incident,
        audience=Audience.PUBLIC,
        summary="We are rolling back a deploy.",
        source=Source.ADMIN,
    )
    page.goto(f"{live_server.url}/status/")
    expect(page.locator("#overall")).to_have_text("Major outage")
    card = page.locator(f"#{incident.reference}")
    expect(card).to_contain_text("Checkout returns 502")
    expect(card).to_contain_text("We are rolling back a deploy.")
    expect(page.locator("ul.services li", has_text="Public API")).to_contain_text("Major outage")
