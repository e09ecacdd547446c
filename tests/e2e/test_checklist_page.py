"""The checklist in a real browser: from the war room's panel to the checklist page, a
step ticked with a note, a skip refused without its reason (what was typed stays), and
the panel's progress afterwards."""

import pytest
from django.apps import apps
from playwright.sync_api import expect

from incidents.models import Severity
from playbooks.defaults import load_defaults
from playbooks.models import ChecklistStep

pytestmark = pytest.mark.django_db(transaction=True)


def test_working_a_step_from_the_war_room(logged_in_page, live_server, declare, commander):
    load_defaults(apps)  # the flushed database lost the migration's playbooks
    incident = declare(severity=Severity.objects.get(key="SEV3"), commander=commander)
    page = logged_in_page
    page.goto(f"{live_server.url}{incident.get_absolute_url()}")
    panel = page.locator(".checklist-panel")
    expect(panel).to_contain_text("0 of 15")
    panel.get_by_role("link", name="Open the checklist").click()
    expect(page.locator("h1")).to_contain_text(f"Checklist of {incident.reference}")

    step = ChecklistStep.objects.get(incident=incident, title="Post the first status update")
    row = page.locator(f"#step-{step.pk}")
    row.get_by_label("Note for Post the first status update").fill("Posted at 10:02")
    row.get_by_role("button", name="Done").click()
    expect(page.locator(".messagelist")).to_contain_text("Done: Post the first status update.")
    expect(page.locator(f"#step-{step.pk}")).to_contain_text("Done by alice")
    expect(page.locator(f"#step-{step.pk}")).to_contain_text("Posted at 10:02")

    bridge = ChecklistStep.objects.get(
        incident=incident, title="Open the incident channel and bridge"
    )
    row = page.locator(f"#step-{bridge.pk}")
    row.get_by_label("Reason to skip Open the incident channel and bridge").fill(" ")
    row.get_by_role("button", name="Skip").click()
    expect(page.locator(f"#step-{bridge.pk}")).to_contain_text("This field is required.")
    bridge.refresh_from_db()
    assert bridge.status == "pending"

    page.goto(f"{live_server.url}{incident.get_absolute_url()}")
    expect(page.locator(".checklist-panel")).to_contain_text("1 of 15")
