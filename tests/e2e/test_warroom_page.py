"""The war-room page in a real browser: it fits the window, runs under the
Content-Security-Policy, and its timeline refreshes itself (htmx)."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from incidents import services
from incidents.models import Source

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1366, 1440])
def test_war_room_fits_the_window_and_refreshes_its_timeline(
    logged_in_page, live_server, declare, commander, width
):
    page = logged_in_page
    violations = []
    page.on("console", lambda m: violations.append(m.text) if m.type == "error" else None)
    page.set_viewport_size({"width": width, "height": 900})
    incident = declare(
        title="Checkout returns 502 for every EU customer on the new cart", commander=commander
    )
    page.clock.install()
    page.goto(f"{live_server.url}{incident.get_absolute_url()}")
    expect(page.locator("h1")).to_contain_text(incident.reference)
    expect(page.locator(".wr-timer").first).to_be_visible()
    # No horizontal scrolling at this width.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=f"/tmp/h3/warroom-{width}.png", full_page=True)

    services.timeline_add_entry(
        incident=incident,
        kind="note",
        summary="Added while the page was open",
        occurred_at=timezone.now(),
        actor=commander,
        source=Source.ADMIN,
    )
    expect(page.locator("#wr-timeline")).not_to_contain_text("Added while the page was open")
    page.clock.run_for(16_000)  # htmx polls every 15 s
    expect(page.locator("#wr-timeline")).to_contain_text("Added while the page was open")
    assert [v for v in violations if "favicon" not in v] == []
