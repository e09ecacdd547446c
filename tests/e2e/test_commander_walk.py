"""A commander runs an incident from the console in a real browser, start to finish:
dashboard → declare in the dialog → war room → acknowledge → note → a refused close that
keeps what was typed → public update → the status page showing only what was written
for the public. A failing step leaves a screenshot under test-results/ (pyproject's
--screenshot=only-on-failure)."""

import pytest
from playwright.sync_api import expect

from incidents import services
from incidents.models import Incident, Severity, Source, Status, TimelineEvent

MESSAGES = ".messagelist:not(.contributed-banners)"

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_commander_runs_an_incident_from_the_console(
    logged_in_page, live_server, default_policy, api_service, responder
):
    page = logged_in_page
    page.set_viewport_size({"width": 1440, "height": 900})

    # The landing page is the dashboard, not the app list.
    expect(page.locator("#content")).to_contain_text("Needs attention")

    # Declare in the dialog: a SEV3 needs no post-mortem, so closing is open to it.
    page.click("#declare-button")
    dialog = page.locator("#declare-dialog")
    expect(dialog).to_be_visible()
    page.fill("#declare-dialog #id_title", "Replica lag on orders-db")
    sev3 = Severity.objects.get(key="SEV3")
    dialog.locator(f"input[name=severity][value='{sev3.pk}']").check()
    page.select_option("#declare-dialog #id_incident_type", label="Outage")
    dialog.locator("input[name=services]").first.check()
    page.click("#declare-dialog input[type=submit]")
    page.wait_for_url("**/war-room/")
    incident = Incident.objects.get(title="Replica lag on orders-db")
    expect(page.locator("h1")).to_contain_text(incident.reference)
    expect(page.locator(".wr-roles")).to_contain_text("commander")

    # Acknowledge.
    page.locator("#wr-acknowledge button[type=submit]").click()
    expect(page.locator(MESSAGES)).to_contain_text("cknowledged")
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None

    # A note, saved on its own.
    page.fill("#wr-note textarea[name='note-summary']", "Lag started after the 10:00 batch")
    page.locator("#wr-note button[type=submit]").click()
    expect(page.locator("#wr-timeline")).to_contain_text("Lag started after the 10:00 batch")

    # Resolved; then, while the commander types the closing note, a colleague raises the
    # severity to SEV1, whose post-mortem is missing: the close is refused, and the page
    # comes back with the note still typed.
    page.locator("#wr-move button[value=resolved]").click()
    expect(page.locator("#wr-move button[value=closed]")).to_be_enabled()
    page.fill("#wr-move [name='move-note']", "Fix verified for an hour")
    services.incident_change_severity(
        incident=Incident.objects.get(pk=incident.pk),
        severity=Severity.objects.get(key="SEV1"),
        reason="Orders were lost after all",
        actor=responder,
        source=Source.API,
    )
    page.locator("#wr-move button[value=closed]").click()
    expect(page.locator("#wr-move")).to_contain_text("post-mortem")
    expect(page.locator("#wr-move [name='move-note']")).to_have_value("Fix verified for an hour")
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED

    # A public title and a public update: now, and only now, the public sees it.
    page.goto(f"{live_server.url}/status/")
    expect(page.locator("body")).not_to_contain_text("Replica lag on orders-db")
    page.goto(f"{live_server.url}{incident.get_absolute_url()}")
    page.fill("#wr-public-title [name='public_title-public_title']", "Delayed order emails")
    page.locator("#wr-public-title button[type=submit]").click()
    expect(page.locator(".wr-public")).to_contain_text("Delayed order emails")
    page.select_option("#wr-update [name='update-audience']", "public")
    page.fill("#wr-update [name='update-summary']", "Order emails are arriving again.")
    page.locator("#wr-update button[name=post]").click()
    expect(page.locator(MESSAGES)).to_be_visible()
    assert incident.updates.filter(audience="public").count() == 1

    page.goto(f"{live_server.url}/status/")
    body = page.locator("body")
    expect(body).to_contain_text("Delayed order emails")
    expect(body).to_contain_text("Order emails are arriving again.")
    expect(body).not_to_contain_text("Replica lag on orders-db")
    expect(body).not_to_contain_text("Lag started after the 10:00 batch")
    assert incident.timeline.filter(kind=TimelineEvent.Kind.NOTE).exists()
