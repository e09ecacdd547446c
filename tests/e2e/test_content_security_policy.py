"""Under our Content-Security-Policy every page still works in a real browser, and the
browser reports no violation: the admin, Swagger UI, Redoc, the status page, the sign-in
and post-mortem pages."""

import pytest
from playwright.sync_api import expect

from incidents import services
from incidents.models import Audience, Source
from tests.conftest import make_user
from tests.reviews import publish_review, resolve

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery"

# Installed before any script of the page runs; the browser fires the event for every
# blocked script, style, image, font, worker, frame or form target.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.effectiveDirective} blocked ${event.blockedURI}`);
});
"""


@pytest.fixture
def watched(page):
    """The page, recording CSP violations and console errors; none may happen."""
    problems = []
    page.add_init_script(WATCH_VIOLATIONS)

    def on_console(message):
        # Browsers ask for /favicon.ico by themselves; we have none, and that is no error.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(f"console {message.type}: {message.text} {message.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    yield page, problems
    # Each test checks before it ends; this is for a page it left still loading.
    assert problems == []


# Redoc's sidebar footer always shows Redocly's logo from their CDN; the policy refuses it
# (as it should: no outside origins), and the footer keeps its text link.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def assert_clean(page, problems, refused=()):
    """No violation or console error, but for the outside `refused` URLs, each seen."""
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__violations") == [f"img-src blocked {url}" for url in refused]
    for url in refused:
        problems[:] = [problem for problem in problems if url not in problem]
    assert problems == []


def test_admin_console_runs_under_the_policy(watched, live_server, commander, declare):
    page, problems = watched
    incident = declare(title="Checkout returns 502")
    commander.set_password(PASSWORD)
    commander.save()
    page.goto(f"{live_server.url}/admin/login/")
    assert_clean(page, problems)
    page.fill("#id_username", commander.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert_clean(page, problems)

    page.goto(f"{live_server.url}/admin/incidents/incident/")
    row = page.locator("#result_list tbody tr", has_text=incident.reference)
    expect(row).to_contain_text("SEV1")
    # The admin's own scripts run: ticking a row counts it in the actions bar.
    row.locator("input[name=_selected_action]").check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    assert_clean(page, problems)

    page.goto(f"{live_server.url}/admin/incidents/incident/{incident.pk}/change/")
    expect(page.locator("#timeline-group")).to_be_visible()
    # Inline formsets are built by the admin's JavaScript.
    expect(page.locator("#timeline-group .add-row a")).to_be_visible()
    assert_clean(page, problems)


def test_swagger_ui_runs_under_the_policy(watched, live_server):
    page, problems = watched
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/api/v1/incidents/{reference}/transition/")).to_be_visible()
    assert page.locator(".opblock").count() > 10
    assert page.evaluate("ui.getConfigs().validatorUrl") is None
    assert_clean(page, problems)


def test_redoc_runs_under_the_policy(watched, live_server):
    page, problems = watched
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith((live_server.url, f"blob:{live_server.url}/"))
            else None
        ),
    )
    page.goto(f"{live_server.url}/api/redoc/")
    # Redoc fetches and lays out the whole schema first: slow on a busy machine.
    expect(page.locator("h1", has_text="Sitrep API")).to_be_visible(timeout=30_000)
    # Search runs in a web worker that Redoc builds from a blob: URL.
    page.get_by_placeholder("Search...").fill("transition")
    expect(page.locator("[role=search] li").first).to_be_visible(timeout=30_000)
    assert_clean(page, problems, refused=[REDOC_LOGO])
    assert outside == [REDOC_LOGO]  # asked for, and refused by the browser


def test_status_page_runs_under_the_policy(watched, live_server, declare, api_service):
    page, problems = watched
    incident = declare(title="Checkout returns 502", services=[api_service])
    services.status_update_post(
        incident=incident,
        audience=Audience.PUBLIC,
        summary="We are rolling back a deploy.",
        source=Source.ADMIN,
    )
    page.goto(f"{live_server.url}/status/")
    expect(page.locator("#overall")).to_have_text("Major outage")
    expect(page.locator(f"#{incident.reference}")).to_contain_text("rolling back")
    assert_clean(page, problems)


def test_sign_in_and_post_mortem_pages_run_under_the_policy(
    watched, live_server, declare, django_user_model
):
    page, problems = watched
    incident = declare(title="Checkout returns 502")
    resolve(incident)
    publish_review(incident)
    stakeholder = make_user(django_user_model, "sam", "Stakeholders")
    stakeholder.set_password(PASSWORD)
    stakeholder.save()
    page.add_init_script("window.print = () => { window.__printed = true; };")

    page.goto(f"{live_server.url}/accounts/login/?next=/postmortems/")
    assert_clean(page, problems)
    page.fill("#id_username", "sam")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    card = page.locator("article.postmortem", has_text=incident.reference)
    expect(card).to_contain_text("Checkout returns 502")
    assert_clean(page, problems)

    card.get_by_role("link").first.click()
    expect(page.locator("h1")).to_have_text("Checkout returns 502")
    # Our one inline script, allowed by its nonce, wires the print link.
    page.get_by_role("link", name="Print / save as PDF").click()
    assert page.evaluate("window.__printed") is True
    assert_clean(page, problems)
