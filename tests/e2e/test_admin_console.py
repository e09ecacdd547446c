"""A commander runs an incident from the admin in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from incidents import services
from incidents.models import Role, Source, Status, TimelineEvent

# What the admin says of the last action (not the warning banners other apps contribute).
MESSAGES = ".messagelist:not(.contributed-banners)"

pytestmark = pytest.mark.django_db(transaction=True)


def test_commander_acknowledges_and_logs_a_decision(
    logged_in_page, live_server, declare, responder
):
    page = logged_in_page
    incident = declare(title="Checkout returns 502")

    page.goto(f"{live_server.url}/admin/incidents/incident/")
    row = page.locator("#result_list tbody tr", has_text=incident.reference)
    expect(row).to_contain_text("SEV1")
    expect(row).to_contain_text("due in")

    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "acknowledge")
    page.click("button[name=index]")
    expect(page.locator(MESSAGES)).to_contain_text("Acknowledged 1 incident(s).")
    expect(row).to_contain_text("Investigating")

    # A row opens the war room; its "Edit details" opens the full form.
    row.get_by_role("link", name=incident.reference).click()
    expect(page).to_have_url(re.compile(rf"/admin/incidents/incident/{incident.pk}/war-room/"))
    page.get_by_role("link", name="Edit details").click()
    expect(page).to_have_url(re.compile(rf"/admin/incidents/incident/{incident.pk}/change/"))
    new_entry = page.locator("#timeline-group tr.form-row:not(.has_original)").first
    new_entry.locator("select[name$='-kind']").select_option("decision")
    new_entry.locator("textarea[name$='-summary']").fill("Fail over to eu-central")
    new_role = page.locator("#roles-group tr.form-row:not(.has_original)").first
    new_role.locator("select[name$='-role']").select_option("technical_lead")
    new_role.locator("select[name$='-user']").select_option(label="bob")
    page.click("input[name=_continue]")
    expect(page.locator(MESSAGES)).to_contain_text("was changed successfully")
    expect(page.locator("#timeline-group")).to_contain_text("Fail over to eu-central")
    expect(page.locator("#roles-group")).to_contain_text("Technical lead")

    incident.refresh_from_db()
    assert incident.status == Status.INVESTIGATING
    assert incident.timeline.filter(kind=TimelineEvent.Kind.DECISION).count() == 1
    assert incident.roles.get(role="technical_lead").user == responder


def test_illegal_move_is_explained_in_the_page(logged_in_page, live_server, declare):
    page = logged_in_page
    incident = declare(title="Queue backlog")
    page.goto(f"{live_server.url}/admin/incidents/incident/")
    row = page.locator("#result_list tbody tr", has_text=incident.reference)
    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "move_to_status")
    page.select_option("select[name=to_status]", "closed")
    page.click("button[name=index]")
    expect(page.locator(MESSAGES)).to_contain_text(
        "cannot move from declared to closed; allowed from declared: investigating"
    )
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED


def test_commander_stands_a_scribe_down_from_the_roles_inline(
    logged_in_page, live_server, declare, responder
):
    page = logged_in_page
    incident = declare(title="Search is slow")
    scribe = services.role_assign(
        incident=incident, role=Role.SCRIBE, user=responder, source=Source.ADMIN
    )
    page.goto(f"{live_server.url}/admin/incidents/incident/{incident.pk}/change/")
    row = page.locator("#roles-group tr.has_original", has_text="Scribe")
    row.get_by_role("link", name="Stand down…").click()
    expect(page.locator("#content-main")).to_contain_text("Stand bob down as scribe")
    page.click("#stand-down-form input[type=submit]")
    # Back on the war room, where the roles and the timeline say what happened.
    expect(page).to_have_url(re.compile(rf"/admin/incidents/incident/{incident.pk}/war-room/"))
    expect(page.locator(MESSAGES)).to_contain_text("Stood bob down as scribe.")
    expect(page.locator(".wr-roles")).not_to_contain_text("Scribe")
    expect(page.locator("#wr-timeline")).to_contain_text("bob stood down as scribe")

    scribe.refresh_from_db()
    assert scribe.relieved_at is not None
