"""The stakeholder pages: reading, searching and downloading published reviews."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qsl

import pytest
import time_machine
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Role, Service, Source, TimelineEvent
from postmortems import services
from postmortems.models import SECTIONS, PostMortem
from tests.conftest import make_user
from tests.forms import form_data
from tests.reviews import publish, resolve

LIST = "/postmortems/"
LOGIN = "/accounts/login/"


def page_url(postmortem, markdown=False):
    reference = postmortem.incident.reference
    return f"{LIST}{reference}.md" if markdown else f"{LIST}{reference}/"


def listed(response) -> list[str]:
    """Return the references the list page shows, in order."""
    assert response.status_code == 200
    return re.findall(r'<a href="/postmortems/(INC-\d{4}-\d{4,})/">', response.content.decode())


def refs(*postmortems):
    return [postmortem.incident.reference for postmortem in postmortems]


@pytest.fixture
def published(incident, reviewer, api_service):
    return publish(resolve(incident(title="Search was down", services=[api_service])), reviewer)


@pytest.fixture
def sam(client, stakeholder):
    client.force_login(stakeholder)
    return client


@pytest.fixture
def alice(client, commander):
    client.force_login(commander)
    return client


# --- signing in and permissions -------------------------------------------------------


@pytest.mark.parametrize("markdown", [None, False, True])
def test_anonymous_reader_is_sent_to_sign_in(client, published, markdown):
    path = LIST if markdown is None else page_url(published, markdown)
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == f"{LOGIN}?next={path}"


def test_stakeholder_signs_in_on_the_login_page_and_lands_on_the_list(
    client, stakeholder, published
):
    login = client.get(client.get(LIST).url)
    assert login.status_code == 200
    assert "Sign in" in login.content.decode()
    data = form_data(login.content.decode())
    assert data["next"] == LIST
    data.update(username="sam", password="pw-sam")
    response = client.post(LOGIN, data, follow=True)
    assert response.redirect_chain[-1] == (LIST, 302)
    assert listed(response) == refs(published)
    assert "Console" not in response.content.decode()  # not staff: no admin link


def test_login_without_next_lands_on_the_list(client, stakeholder, published):
    response = client.post(LOGIN, {"username": "sam", "password": "pw-sam"}, follow=True)
    assert response.redirect_chain[-1] == (LIST, 302)
    assert listed(response) == refs(published)


def test_login_after_following_a_link_lands_on_that_review(client, stakeholder, published):
    path = page_url(published)
    data = form_data(client.get(f"{LOGIN}?next={path}").content.decode())
    data.update(username="sam", password="pw-sam")
    response = client.post(LOGIN, data, follow=True)
    assert response.redirect_chain[-1] == (path, 302)
    assert "Search was down" in response.content.decode()


def test_login_ignores_a_next_that_leaves_the_site(client, stakeholder, published):
    data = {"username": "sam", "password": "pw-sam", "next": "https://evil.example/"}
    response = client.post(LOGIN, data)
    assert response.status_code == 302
    assert response.url == LIST


def test_wrong_password_is_refused_on_the_login_page(client, stakeholder):
    response = client.post(LOGIN, {"username": "sam", "password": "guess"})
    assert response.status_code == 200
    assert "Your username and password didn't match" in response.content.decode()
    assert client.get(LIST).status_code == 302


@pytest.mark.parametrize("markdown", [None, False, True])
def test_signed_in_user_without_view_permission_gets_403(
    client, django_user_model, published, markdown
):
    client.force_login(make_user(django_user_model, "nina"))
    path = LIST if markdown is None else page_url(published, markdown)
    response = client.get(path)
    assert response.status_code == 403
    assert "Search was down" not in response.content.decode()


def test_stakeholder_reads_published_reviews_only(sam, published, postmortem):
    assert listed(sam.get(LIST)) == refs(published)
    assert sam.get(page_url(published)).status_code == 200
    assert sam.get(page_url(postmortem)).status_code == 404
    assert sam.get(page_url(postmortem, markdown=True)).status_code == 404


def test_writer_previews_a_draft_with_a_banner(alice, postmortem, published):
    response = alice.get(page_url(postmortem))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="draft-banner"' in body
    assert "Preview" in body and "<strong>draft</strong>" in body
    assert 'id="draft-banner"' not in alice.get(page_url(published)).content.decode()
    assert listed(alice.get(LIST)) == refs(published)  # the list is for published reviews


def test_unknown_reference_is_404(sam, published):
    assert sam.get(f"{LIST}INC-1999-0001/").status_code == 404


# --- confidential incidents -----------------------------------------------------------


@pytest.fixture
def secret(incident, security_type, security_member, published):
    """A published review of a confidential incident (alice declared it, carol reviewed)."""
    confidential = incident(title="Token leaked", incident_type=security_type)
    assert confidential.confidential
    return publish(resolve(confidential), security_member)


@pytest.mark.parametrize("persona", ["stakeholder", "outsider", "responder"])
def test_confidential_review_is_hidden_from_people_outside_the_incident(
    client, request, secret, published, persona
):
    client.force_login(request.getfixturevalue(persona))
    assert listed(client.get(LIST)) == refs(published)
    assert listed(client.get(LIST, {"q": "Token"})) == []
    assert client.get(page_url(secret)).status_code == 404
    assert client.get(page_url(secret, markdown=True)).status_code == 404


def test_confidential_review_is_visible_to_the_security_group(client, secret, security_member):
    client.force_login(security_member)
    assert secret.incident.reference in listed(client.get(LIST))
    response = client.get(page_url(secret))
    assert response.status_code == 200
    assert "Token leaked" in response.content.decode()
    assert client.get(page_url(secret, markdown=True)).status_code == 200


def test_related_incidents_are_named_only_to_those_who_may_see_them(
    client, incident, security_type, reviewer, stakeholder, security_member
):
    hidden = incident(title="Token leaked", incident_type=security_type)
    shown = incident(title="Search slow")
    postmortem = resolve(incident(title="Search was down"))
    services.postmortem_update(
        postmortem=postmortem, related_incidents=[hidden, shown], source=Source.ADMIN
    )
    publish(postmortem, reviewer)
    client.force_login(stakeholder)
    body = client.get(page_url(postmortem)).content.decode()
    assert f"{shown.reference} Search slow" in body
    assert hidden.reference not in body and "Token leaked" not in body
    client.force_login(security_member)
    body = client.get(page_url(postmortem)).content.decode()
    assert f"{hidden.reference} Token leaked" in body


# --- the list: search, filters, pages --------------------------------------------------


@pytest.fixture
def catalogue(incident, reviewer, api_service, sev2):
    """Three published reviews of incidents that began in January, February and March."""
    web = Service.objects.create(name="Web", slug="web")

    def published_on(day, **fields):
        started = datetime(2026, *day, 9, 0, tzinfo=UTC)
        changes = fields.pop("changes", {})
        with time_machine.travel(started + timedelta(minutes=5), tick=False):
            made = incident(started_at=started, **fields)
        with time_machine.travel(started + timedelta(days=1), tick=False):
            return publish(resolve(made), reviewer, **changes)

    return {
        "january": published_on(
            (1, 10),
            title="Checkout returns 502",
            services=[api_service],
            changes={"root_cause": "The connection pool was exhausted."},
        ),
        "february": published_on((2, 20), title="Search slow", severity=sev2),
        "march": published_on(
            (3, 5),
            title="Login loop",
            services=[web],
            changes={"lessons_learned": "Cookies need a **SameSite** review."},
        ),
    }


def test_list_shows_newest_publication_first_with_summary(sam, catalogue):
    response = sam.get(LIST)
    assert listed(response) == refs(catalogue["march"], catalogue["february"], catalogue["january"])
    body = response.content.decode()
    assert "Checkout returns 502: a SEV1 (critical) outage" in body
    assert "10 Jan 2026" in body


SEARCHES = [
    ("Checkout", ["january"]),  # title
    ("connection pool", ["january"]),  # root cause
    ("samesite", ["march"]),  # lessons learned, any case
    ("SEV2 (high)", ["february"]),  # executive summary
    ("nothing like it", []),
]


def test_list_searches_titles_sections_and_references(sam, catalogue):
    for query, expected in SEARCHES:
        wanted = refs(*(catalogue[key] for key in expected))
        assert listed(sam.get(LIST, {"q": query})) == wanted, query
    reference = catalogue["february"].incident.reference
    assert listed(sam.get(LIST, {"q": reference})) == [reference]


FILTERS = [
    ({"service": "api"}, ["january"]),
    ({"service": "web"}, ["march"]),
    ({"severity": "SEV2"}, ["february"]),
    ({"severity": "SEV1"}, ["march", "january"]),
    ({"after": "2026-02-01"}, ["march", "february"]),
    ({"before": "2026-02-20"}, ["february", "january"]),
    ({"after": "2026-02-20", "before": "2026-02-20"}, ["february"]),
    ({"severity": "SEV1", "after": "2026-02-01"}, ["march"]),
    ({"service": "api", "q": "Login"}, []),
]


def test_list_filters_by_service_severity_and_dates(sam, catalogue):
    for params, expected in FILTERS:
        wanted = refs(*(catalogue[key] for key in expected))
        assert listed(sam.get(LIST, params)) == wanted, params


def test_list_with_an_unknown_service_says_so(sam, catalogue):
    response = sam.get(LIST, {"service": "nope"})
    assert response.status_code == 200
    assert "service: Select a valid choice" in response.content.decode()


@pytest.fixture
def many_published(incident, db):
    """26 published reviews, published a minute apart: one more than a page holds."""
    now = timezone.now()
    made = []
    for number in range(26):
        postmortem = services.postmortem_create(
            incident=incident(title=f"Incident {number:02d}"), source=Source.ADMIN
        )
        PostMortem.objects.filter(pk=postmortem.pk).update(
            status=PostMortem.Status.PUBLISHED, published_at=now - timedelta(minutes=number)
        )
        made.append(postmortem)
    return made


def older_link(response) -> dict:
    """Return the query of the "Older" link, as the browser would send it."""
    [href] = re.findall(r'<a href="\?([^"]*)">Older', response.content.decode())
    return dict(parse_qsl(unescape(href)))


def test_list_is_paginated_25_a_page_keeping_the_filters(sam, many_published):
    first = sam.get(LIST, {"severity": "SEV1", "q": "Incident"})
    assert listed(first) == refs(*many_published[:25])
    assert "Page 1 of 2" in first.content.decode()
    assert older_link(first) == {"severity": "SEV1", "q": "Incident", "page": "2"}
    second = sam.get(LIST, older_link(first))
    assert listed(second) == refs(many_published[25])
    assert "Page 2 of 2" in second.content.decode()
    assert listed(sam.get(LIST, {"page": "999"})) == refs(many_published[25])


def test_list_says_when_nothing_matches(sam, published):
    response = sam.get(LIST, {"q": "no such words"})
    assert 'id="empty"' in response.content.decode()


# --- one review -----------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def story(incident, api_service, reviewer, commander, responder):
    """A SEV1: impact at 09:00, declared 09:10, acknowledged 09:15, a note and a decision,
    resolved 10:40; its review written, with a factor and a commented key event."""
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        made = incident(
            title="Checkout returns 502",
            services=[api_service],
            started_at=T0,
            estimated_users_affected=1200,
        )
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        incident_services.incident_acknowledge(incident=made, actor=commander, source=Source.ADMIN)
        incident_services.role_assign(
            incident=made, role=Role.SCRIBE, user=responder, source=Source.ADMIN
        )
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        incident_services.timeline_add_entry(
            incident=made,
            kind=TimelineEvent.Kind.NOTE,
            summary="Pool metrics look flat",
            source=Source.ADMIN,
        )
        incident_services.timeline_add_entry(
            incident=made,
            kind=TimelineEvent.Kind.DECISION,
            summary="Fail over to eu-central",
            source=Source.ADMIN,
        )
    with time_machine.travel(T0 + timedelta(minutes=100), tick=False):
        postmortem = resolve(made)
    decision = postmortem.timeline.get(summary="Fail over to eu-central")
    return publish(
        postmortem,
        reviewer,
        root_cause="A config push **halved** the pool.",
        lessons_learned="- Canary config\n- Alert on pool saturation",
        contributing_factors=[("technical", "Pool size *hard-coded*")],
        timeline_marks={decision.pk: (True, "The turning point: _traffic recovered_.")},
    )


def section(body: str, element_id: str) -> str:
    """Return the HTML of the <section> or <table> with the id."""
    start = body.index(f'id="{element_id}"')
    end = body.find("</section>", start)
    return body[start : end if end != -1 else None]


def test_detail_shows_header_facts(sam, story):
    body = sam.get(page_url(story)).content.decode()
    reference = story.incident.reference
    assert f"Post-mortem {reference}: Checkout returns 502" in body  # the <title>
    assert "<h1>Checkout returns 502</h1>" in body
    assert "SEV1 Critical" in body
    assert '<span class="tag">Outage</span> <span class="tag">Production</span>' in body
    assert "<dt>Services</dt><dd>Public API</dd>" in body
    assert "<dt>Owner</dt><dd>alice</dd>" in body
    assert "<dt>Approved by</dt><dd>rita</dd>" in body
    assert "<dt>Users affected</dt><dd>about 1200</dd>" in body
    assert f'href="/postmortems/{reference}.md"' in body
    assert "blameless" in body
    assert 'id="draft-banner"' not in body


def test_detail_shows_response_metrics_and_milestones(sam, story):
    body = sam.get(page_url(story)).content.decode()
    metrics = section(body, "metrics")
    for label, value in [
        ("Time to detect", "10m"),
        ("Time to acknowledge", "5m"),
        ("Time to mitigate", "1h 40m"),
        ("Time to resolve", "1h 40m"),
    ]:
        assert f'<span class="muted">{label}</span><b>{value}</b>' in metrics
    assert "<tr><th>Impact began</th><td>2 Mar 2026 09:00 UTC</td></tr>" in body
    assert "<tr><th>Resolved</th><td>2 Mar 2026 10:40 UTC</td></tr>" in body


def test_detail_lists_key_events_only_in_the_key_event_table(sam, story):
    body = sam.get(page_url(story)).content.decode()
    timeline = section(body, "timeline")
    key_table, full_timeline = timeline.split("<details", 1)
    assert "Fail over to eu-central" in key_table
    assert "<em>traffic recovered</em>" in key_table
    assert "Declared as SEV1" in key_table
    assert "Pool metrics look flat" not in key_table
    assert "bob is now scribe" not in key_table
    assert "Pool metrics look flat" in full_timeline
    assert "bob is now scribe" in full_timeline
    assert f"Full timeline ({story.timeline.count()} events)" in full_timeline


def test_detail_renders_sections_as_markdown(sam, story):
    body = sam.get(page_url(story)).content.decode()
    assert "A config push <strong>halved</strong> the pool." in section(body, "root_cause")
    lessons = section(body, "lessons_learned")
    assert "<li>Canary config</li>" in lessons
    assert "<li>Alert on pool saturation</li>" in lessons
    assert "Not written." in section(body, "went_well")
    for name, (title, _) in SECTIONS.items():
        assert f'<section class="review-section" id="{name}">\n  <h2>{title}</h2>' in body


def test_detail_shows_contributing_factors_under_the_root_cause(sam, story):
    root_cause = section(sam.get(page_url(story)).content.decode(), "root_cause")
    factors = section(root_cause, "factors")
    assert '<span class="tag">Technical</span>' in factors
    assert "Pool size <em>hard-coded</em>" in factors


def test_detail_shows_who_responded(sam, story):
    people = section(sam.get(page_url(story)).content.decode(), "people")
    assert "<tr><td>Incident commander</td><td>alice</td></tr>" in people
    assert "<tr><td>Scribe</td><td>bob</td></tr>" in people


# --- sanitising what people wrote -----------------------------------------------------

PAYLOAD = (
    "Before <script>alert(1)</script> and <img src=x onerror=alert(1)> "
    "and [link](javascript:alert(1)) after"
)

# Other ways Markdown is known to smuggle script in: autolinks, reference links, case and
# entity tricks, raw HTML blocks, images and data: URLs.
MORE_PAYLOADS = """
<javascript:alert(2)>

[ref link][x] and [Case](JaVaScRiPt:alert(3)) and [entity](&#106;avascript:alert(4))

[x]: javascript:alert(5)

<div onmouseover="alert(6)">raw block</div>

![image](javascript:alert(7)) ![data](data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==)

[data link](data:text/html,<script>alert(9)</script>) [vb](vbscript:msgbox(10))
"""


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def csp_nonce(response) -> str | None:
    """Return the nonce the response's Content-Security-Policy lets scripts run with."""
    found = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    return found and found.group(1)


def assert_no_script_can_run(body: str, nonce: str | None = None) -> None:
    """Only the page's own script, carrying the response's CSP `nonce`, may be there."""
    assert "<script>alert" not in body
    assert not re.search(r"<[^<>]*\bonerror\s*=", body, re.IGNORECASE)
    assert 'href="javascript:' not in body.lower()
    assert "<img" not in body.lower()
    reader = _Tags()
    reader.feed(body)
    ours = [("script", {"nonce": nonce})] if nonce else []
    assert len(reader.scripts) == len(ours)
    risky = [(tag, attrs) for tag, attrs in reader.tags if tag in ("script", "img", "iframe")]
    assert risky == ours
    for tag, attrs in reader.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            if name in ("href", "src", "action", "formaction"):
                scheme = (value or "").strip().lower().split(":", 1)[0]
                assert scheme not in ("javascript", "vbscript", "data"), (tag, attrs)


@pytest.fixture
def hostile(incident, reviewer, responder, django_user_model):
    """A published review with the payload in every field a person writes."""
    # Service names hold at most 100 characters.
    hostile_service = Service.objects.create(
        name="Svc Before <script>alert(1)</script><img src=x onerror=alert(1)>", slug="hostile"
    )
    named = make_user(django_user_model, "hugo", "Responders", first_name=PAYLOAD)
    other = incident(title=f"Related {PAYLOAD}")
    made = incident(
        title=f"Title {PAYLOAD}"[:200],
        summary=f"Summary {PAYLOAD}",
        customer_impact=f"Impact {PAYLOAD}",
        services=[hostile_service],
    )
    incident_services.role_assign(incident=made, role=Role.SCRIBE, user=named, source=Source.ADMIN)
    incident_services.timeline_add_entry(
        incident=made,
        kind=TimelineEvent.Kind.NOTE,
        summary=f"Note {PAYLOAD}",
        source=Source.ADMIN,
    )
    postmortem = resolve(made)
    note = postmortem.timeline.get(kind=TimelineEvent.Kind.NOTE)
    sections = {name: f"{name} {PAYLOAD}" for name in SECTIONS}
    sections["executive_summary"] = f"{postmortem.executive_summary}\n\n{PAYLOAD}"
    sections["could_improve"] += MORE_PAYLOADS
    return publish(
        postmortem,
        reviewer,
        **sections,
        related_incidents=[other],
        contributing_factors=[("technical", f"Factor {PAYLOAD}")],
        timeline_marks={note.pk: (True, f"Commentary {PAYLOAD}")},
    )


def test_no_field_can_put_a_script_on_the_review_page(sam, hostile):
    response = sam.get(page_url(hostile))
    assert response.status_code == 200
    body = response.content.decode()
    assert_no_script_can_run(body, nonce=csp_nonce(response))
    # Every field was rendered, as harmless text.
    assert body.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= len(SECTIONS) + 6
    assert "Summary Before" in section(body, "executive_summary")
    assert "Factor Before" in section(body, "factors")
    assert "Commentary Before" in section(body, "timeline")
    assert "Svc Before" in body and "Related Before" in body
    assert "raw block" in section(body, "could_improve")


def test_no_field_can_put_a_script_on_the_list_page(sam, hostile):
    response = sam.get(LIST)
    assert listed(response) == refs(hostile)
    assert_no_script_can_run(response.content.decode())


def test_no_field_can_put_a_script_on_the_draft_preview(alice, hostile):
    services.postmortem_reopen(
        postmortem=hostile, reason=f"Reopened {PAYLOAD}", source=Source.ADMIN
    )
    response = alice.get(page_url(hostile))
    assert 'id="draft-banner"' in response.content.decode()
    assert_no_script_can_run(response.content.decode(), nonce=csp_nonce(response))


# --- Markdown download ----------------------------------------------------------------


def test_markdown_download_is_an_attachment_named_after_the_incident(sam, story):
    response = sam.get(page_url(story, markdown=True))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    reference = story.incident.reference
    assert response["Content-Disposition"] == f'attachment; filename="{reference}-postmortem.md"'


def test_markdown_download_holds_sections_key_events_and_metrics(sam, story):
    text = sam.get(page_url(story, markdown=True)).content.decode()
    assert text.startswith(f"# Post-mortem {story.incident.reference}: Checkout returns 502\n")
    assert "## Root cause\n\nA config push **halved** the pool.\n" in text
    assert "## Lessons learned\n\n- Canary config\n- Alert on pool saturation\n" in text
    assert "## What went well\n\n_Not written._\n" in text
    assert "- **Technical**: Pool size *hard-coded*" in text
    key_events = text[text.index("## Key events") : text.index("## Executive summary")]
    assert "- **2026-03-02 09:30** Fail over to eu-central" in key_events
    assert "The turning point: _traffic recovered_." in key_events
    assert "Pool metrics look flat" not in key_events
    assert "| Severity | SEV1 Critical |" in text
    assert "| Services | Public API |" in text
    assert "| Time to acknowledge | 5m |" in text
    assert "| Time to resolve | 1h 40m |" in text
    assert "- Impact began: 2026-03-02 09:00" in text
    assert "- Incident commander: alice" in text


def test_writer_downloads_a_draft_as_markdown(alice, postmortem):
    response = alice.get(page_url(postmortem, markdown=True))
    assert response.status_code == 200
    assert "| Status | Draft |" in response.content.decode()
