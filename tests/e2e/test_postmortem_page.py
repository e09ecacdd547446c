"""Stakeholders read, print, find and download a published post-mortem in a real browser."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from incidents import services
from incidents.models import Source, Status, TimelineEvent
from postmortems import services as reviews
from postmortems.models import BLAMELESS_NOTE, PostMortem
from tests.conftest import make_user
from tests.reviews import publish_review

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery"
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
TITLE = "Checkout returns 502"
BOLD_LIST = "The **rollback** was fast.\n\n- Alerts fired early\n- The runbook was current"
INJECTION = (
    "We now sanitise input.\n\n"
    "<script>window.__pwned = 1</script>\n\n"
    'Also <img src=x onerror="window.__pwned=1"> is inert.'
)


@pytest.fixture
def stakeholder(db, django_user_model):
    """Reads published reviews and nothing else (not staff)."""
    user = make_user(django_user_model, "sam", "Stakeholders")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def published(declare, commander, api_service) -> PostMortem:
    """A SEV1 with a real timeline, resolved, its review written and published."""
    now = timezone.now()
    incident = declare(
        title=TITLE,
        commander=commander,
        services=[api_service],
        started_at=now - timedelta(hours=2),
        detected_at=now - timedelta(minutes=100),
        declared_at=now - timedelta(minutes=90),
    )
    services.incident_acknowledge(
        incident=incident,
        actor=commander,
        occurred_at=now - timedelta(minutes=80),
        source=Source.ADMIN,
    )
    services.timeline_add_entry(
        incident=incident,
        kind=TimelineEvent.Kind.DECISION,
        summary="Roll back the 14:02 deploy",
        actor=commander,
        occurred_at=now - timedelta(minutes=60),
        source=Source.ADMIN,
    )
    services.timeline_add_entry(
        incident=incident,
        kind=TimelineEvent.Kind.NOTE,
        summary="Grafana dashboard is slow to load",
        actor=commander,
        occurred_at=now - timedelta(minutes=50),
        source=Source.ADMIN,
    )
    services.incident_transition(
        incident=incident,
        to_status=Status.RESOLVED,
        actor=commander,
        occurred_at=now - timedelta(minutes=30),
        source=Source.ADMIN,
    )
    postmortem = PostMortem.objects.get(incident=incident)
    reviews.postmortem_update(
        postmortem=postmortem,
        went_well=BOLD_LIST,
        lessons_learned=INJECTION,
        contributing_factors=[("technical", "The pool size was *hard-coded*.")],
        source=Source.ADMIN,
    )
    return publish_review(incident)


def sign_in(page, username):
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def review_page(page, live_server, stakeholder, published):
    """The stakeholder signed in and reading the published review."""
    url = f"{live_server.url}/postmortems/{published.incident.reference}/"
    page.goto(f"{live_server.url}/accounts/login/?next=/postmortems/")
    sign_in(page, stakeholder.username)
    page.goto(url)
    expect(page.locator("h1")).to_have_text(TITLE)
    return page


def test_stakeholder_signs_in_and_reads_the_review(page, live_server, stakeholder, published):
    reference = published.incident.reference
    detail = f"{live_server.url}/postmortems/{reference}/"
    page.goto(detail)
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    expect(page.locator("h1")).to_have_text("Sign in")
    sign_in(page, stakeholder.username)
    expect(page).to_have_url(detail)

    expect(page).to_have_title(f"Post-mortem {reference}: {TITLE}")
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(page.locator("nav.top")).to_contain_text("sam")
    expect(page.locator("nav.top")).not_to_contain_text("Console")  # not staff
    expect(page.locator("#draft-banner")).to_have_count(0)
    pill = page.locator("header .sev")
    expect(pill).to_have_text("SEV1 Critical")
    expect(pill).to_have_css("background-color", "rgb(185, 28, 28)")
    expect(page.locator("p.note")).to_have_text(BLAMELESS_NOTE)

    metrics = page.locator("#metrics .metric")
    expect(metrics).to_have_text(
        [
            re.compile(r"Time to detect\s*20m"),
            re.compile(r"Time to acknowledge\s*10m"),
            re.compile(r"Time to mitigate\s*1h 30m"),
            re.compile(r"Time to resolve\s*1h 30m"),
        ]
    )
    expect(page.locator("#milestones")).to_contain_text("Impact began")

    # Key events only in the table; the note is in the collapsed full timeline.
    key_events = page.locator("#timeline > table.grid")
    expect(key_events).to_contain_text("Declared as SEV1")
    expect(key_events).to_contain_text("Roll back the 14:02 deploy")
    expect(key_events).not_to_contain_text("Grafana dashboard is slow to load")
    full = page.locator("#timeline details")
    expect(full).not_to_have_attribute("open", "")
    note = full.get_by_text("Grafana dashboard is slow to load")
    expect(note).to_be_hidden()
    full.locator("summary").click()
    expect(note).to_be_visible()

    # Markdown is rendered.
    went_well = page.locator("#went_well .markdown")
    expect(went_well.locator("strong")).to_have_text("rollback")
    expect(went_well.locator("li")).to_have_text(["Alerts fired early", "The runbook was current"])
    expect(page.locator("#executive_summary")).to_contain_text("Checkout failed for 40 minutes")
    expect(page.locator("#root_cause h3")).to_have_text("Contributing factors")
    factor = page.locator("#factors tr")
    expect(factor).to_have_count(1)
    expect(factor.locator(".tag")).to_have_text("Technical")
    expect(factor.locator("em")).to_have_text("hard-coded")
    expect(page.locator("#detection_gaps")).to_contain_text("Detection and response gaps")

    people = page.locator("#people")
    expect(people.locator("h2")).to_have_text("Who responded")
    expect(people.locator("tr", has_text="alice")).to_contain_text("commander")

    # The injected HTML shows as text and never runs.
    lessons = page.locator("#lessons_learned .markdown")
    expect(lessons).to_contain_text("<script>window.__pwned = 1</script>")
    expect(lessons).to_contain_text('<img src=x onerror="window.__pwned=1">')
    expect(page.locator("main script, main img")).to_have_count(0)
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_print_view_and_no_horizontal_overflow(review_page):
    page = review_page
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate(NO_OVERFLOW), f"horizontal overflow at {width}px"
        page.screenshot(path=f"/tmp/postmortem-screen-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path="/tmp/postmortem-screen.png", full_page=True)
    expect(page.locator("nav.top")).to_be_visible()
    expect(page.locator(".actions")).to_be_visible()

    page.emulate_media(media="print")
    expect(page.locator("nav.top")).to_be_hidden()
    expect(page.locator(".actions")).to_be_hidden()
    expect(page.locator("#timeline details")).to_be_hidden()
    expect(page.locator("h1")).to_be_visible()
    page.screenshot(path="/tmp/postmortem-print.png", full_page=True)


def test_list_page_search_filters_the_reviews(review_page, live_server, published):
    page = review_page
    page.goto(f"{live_server.url}/postmortems/")
    card = page.locator("article.postmortem", has_text=published.incident.reference)
    expect(card).to_contain_text(TITLE)
    expect(card.locator(".sev")).to_have_text("SEV1")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(NO_OVERFLOW), "horizontal overflow of the list at 390px"
    page.screenshot(path="/tmp/postmortem-list-390.png", full_page=True)

    page.get_by_label("Search").fill("checkout")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]q=checkout"))
    expect(card).to_be_visible()
    expect(page.locator("#empty")).to_have_count(0)

    page.get_by_label("Search").fill("zebrafish")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]q=zebrafish"))
    expect(page.locator("#empty")).to_have_text("No published post-mortems match.")
    expect(page.locator("article.postmortem")).to_have_count(0)

    page.get_by_role("link", name="Clear").click()
    card.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text(TITLE)


def test_markdown_download_has_the_reference_in_its_name(review_page, published):
    page = review_page
    reference = published.incident.reference
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == f"{reference}-postmortem.md"
    with open(download.path(), encoding="utf-8") as saved:
        assert TITLE in saved.read()
