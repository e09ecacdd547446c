"""Declaring in a real browser: the header's dialog (htmx, under the CSP), the keyboard
shortcuts, and the same button without JavaScript."""

import pytest
from playwright.sync_api import expect

from incidents.models import Incident

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_d_key_opens_the_dialog_and_declaring_lands_on_the_war_room(
    logged_in_page, live_server, default_policy, api_service
):
    page = logged_in_page
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/incidents/severity/")
    page.keyboard.press("d")
    dialog = page.locator("#declare-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("acknowledge within 15 minutes")
    expect(page.locator("#declare-dialog #id_title")).to_be_focused()
    # Typing "d" in the form is typing, not the shortcut.
    page.keyboard.type("Checkout down for every card")
    page.locator("#declare-dialog input[name=severity]").first.check()
    page.select_option("#declare-dialog #id_incident_type", label="Outage")
    page.locator("#declare-dialog input[name=services]").first.check()
    page.fill("#declare-dialog #id_summary", "5xx since 10:02")
    page.click("#declare-dialog input[type=submit]")
    page.wait_for_url("**/war-room/")
    incident = Incident.objects.get()
    assert incident.title == "Checkout down for every card"
    assert page.url == f"{live_server.url}{incident.get_absolute_url()}"
    expect(page.locator("h1")).to_contain_text(incident.reference)
    assert errors == []


def test_a_refusal_in_the_dialog_keeps_what_was_typed(logged_in_page, live_server, default_policy):
    page = logged_in_page
    page.goto(f"{live_server.url}/admin/")
    page.click("#declare-button")
    expect(page.locator("#declare-dialog")).to_be_visible()
    # Only spaces: the browser sends it, the server refuses it.
    page.fill("#declare-dialog #id_title", "   ")
    page.locator("#declare-dialog input[name=severity]").first.check()
    page.select_option("#declare-dialog #id_incident_type", label="Outage")
    page.fill("#declare-dialog #id_summary", "Typed before the refusal")
    page.click("#declare-dialog input[type=submit]")
    expect(page.locator("#declare-dialog .errornote")).to_be_visible()
    expect(page.locator("#declare-dialog #id_summary")).to_have_value("Typed before the refusal")
    assert page.url == f"{live_server.url}/admin/"
    assert not Incident.objects.exists()


def test_slash_focuses_the_search_box_and_question_mark_lists_the_shortcuts(
    logged_in_page, live_server
):
    page = logged_in_page
    page.goto(f"{live_server.url}/admin/incidents/incident/")
    page.keyboard.press("/")
    expect(page.locator("#searchbar")).to_be_focused()
    page.keyboard.type("INC")  # "/" itself was not typed in
    expect(page.locator("#searchbar")).to_have_value("INC")
    page.locator("#searchbar").blur()
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-dialog")).to_be_visible()
    expect(page.locator("#shortcuts-dialog")).to_contain_text("Declare an incident")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts-dialog")).to_be_hidden()


def test_without_javascript_the_button_opens_the_declare_page(
    browser, live_server, commander, default_policy
):
    commander.set_password("correct horse battery")
    commander.save()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", commander.username)
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    expect(page.locator("#shortcuts-item")).to_be_hidden()  # shortcuts need JavaScript
    page.click("#declare-button")
    page.wait_for_url("**/incident/declare/")
    page.fill("#id_title", "Search is slow")
    page.locator("input[name=severity]").nth(2).check()
    page.select_option("#id_incident_type", label="Performance")
    page.click("#declare-form input[type=submit]")
    page.wait_for_url("**/war-room/")
    assert Incident.objects.get().title == "Search is slow"
    context.close()
