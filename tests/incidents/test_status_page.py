"""The public status page: no login, only what was written for the public, right
conditions, uptime bars, a bounded history and a cache that never shows stale news."""

import gzip
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import services, status_page
from incidents.errors import DomainError
from incidents.models import Audience, Service, Source, Status
from tests.api import client_for

URLS = ("/status/", "/status.json", "/status/feed/")
ATOM = {"atom": "http://www.w3.org/2005/Atom"}


def bodies(client) -> dict[str, str]:
    return {url: client.get(url).content.decode() for url in URLS}


def feed_entries(client) -> list[tuple[str, str]]:
    root = ET.fromstring(client.get("/status/feed/").content)
    return [
        (
            entry.findtext("atom:title", namespaces=ATOM),
            entry.findtext("atom:summary", namespaces=ATOM),
        )
        for entry in root.findall("atom:entry", ATOM)
    ]


def post(incident, summary, audience=Audience.PUBLIC):
    return services.status_update_post(
        incident=incident, audience=audience, summary=summary, source=Source.ADMIN
    )


def name_it(incident, public_title):
    return services.incident_update_details(
        incident=incident, public_title=public_title, source=Source.ADMIN
    )


def move(incident, *statuses):
    for to_status in statuses:
        incident = services.incident_transition(
            incident=incident, to_status=to_status, source=Source.ADMIN
        )
    return incident


@pytest.fixture
def public_outage(declare, api_service):
    incident = declare(title="Checkout returns 502", services=[api_service])
    post(incident, "We are looking into errors.")
    post(incident, "Suspect the db-7 failover.", Audience.INTERNAL)
    return incident


@pytest.fixture
def secret(declare, security_type, api_service):
    return declare(
        title="Token leaked on GitHub", incident_type=security_type, services=[api_service]
    )


@pytest.fixture
def web_service(db):
    return Service.objects.create(name="Web app", slug="web", tier=1)


# --- who appears, and under what name ---------------------------------------------------


def test_declared_incident_with_nothing_public_stays_off_every_public_surface(
    client, declare, api_service
):
    incident = declare(title="Checkout returns 502", services=[api_service])
    for url, body in bodies(client).items():
        assert "Checkout returns 502" not in body, url
        assert incident.reference not in body, url
    data = client.get("/status.json").json()
    assert data["overall"] == "operational"
    assert data["open_incidents"] == []
    [api] = data["services"]
    assert (api["condition"], api["uptime"], api["days"]) == ("operational", 100.0, [])
    assert "All systems operational" in client.get("/status/").content.decode()
    assert feed_entries(client) == []


def test_public_update_shows_the_incident_under_a_neutral_name_never_its_title(
    client, public_outage
):
    for url, body in bodies(client).items():
        assert "Checkout returns 502" not in body, url  # not even in an attribute
        assert "Suspect the db-7 failover." not in body, url
    page = client.get("/status/").content.decode()
    assert "Incident affecting Public API" in page
    assert "We are looking into errors." in page
    assert "Major outage" in page  # SEV1 on the Public API
    [shown] = client.get("/status.json").json()["open_incidents"]
    assert shown["title"] == "Incident affecting Public API"
    assert [u["summary"] for u in shown["updates"]] == ["We are looking into errors."]
    assert feed_entries(client) == [
        ("Incident affecting Public API — Investigating", "We are looking into errors.")
    ]


def test_neutral_name_lists_only_public_services(client, declare, api_service, web_service):
    internal = Service.objects.create(name="Billing worker", slug="billing", public=False)
    incident = declare(services=[api_service, web_service, internal])
    post(incident, "Errors on the API and the web app.")
    [shown] = client.get("/status.json").json()["open_incidents"]
    assert shown["title"] == "Incident affecting Public API and Web app"
    assert shown["services"] == ["api", "web"]
    assert "Billing worker" not in client.get("/status/").content.decode()


def test_an_incident_touching_no_public_service_is_a_service_disruption(client, declare):
    incident = declare()
    post(incident, "Some customers see errors.")
    [shown] = client.get("/status.json").json()["open_incidents"]
    assert shown["title"] == "Service disruption"


def test_public_title_alone_publishes_the_incident_under_that_title(client, declare, api_service):
    incident = declare(title="db-7 failover broke checkout", services=[api_service])
    name_it(incident, "  Checkout errors for some customers ")
    page = client.get("/status/").content.decode()
    assert "Checkout errors for some customers" in page
    assert "db-7 failover" not in page
    assert "We are investigating reports of a problem" in page  # no update yet
    [shown] = client.get("/status.json").json()["open_incidents"]
    assert (shown["title"], shown["updates"]) == ("Checkout errors for some customers", [])
    data = client.get("/status.json").json()
    assert data["services"][0]["condition"] == "major_outage"


def test_clearing_the_public_title_takes_an_incident_without_updates_off_the_page(
    client, declare, api_service
):
    incident = declare(services=[api_service])
    name_it(incident, "Checkout errors")
    assert client.get("/status.json").json()["open_incidents"]
    name_it(incident, "")
    data = client.get("/status.json").json()
    assert data["open_incidents"] == [] and data["overall"] == "operational"


def test_confidential_incident_stays_hidden_even_with_a_public_title(client, secret):
    name_it(secret, "Login problems")
    for url, body in bodies(client).items():
        assert "Token leaked" not in body, url
        assert "Login problems" not in body, url
        assert secret.reference not in body, url
    data = client.get("/status.json").json()
    assert data["overall"] == "operational"
    assert {s["slug"]: (s["condition"], s["days"]) for s in data["services"]} == {
        "api": ("operational", [])
    }


def test_public_updates_are_refused_on_confidential_incidents(secret):
    with pytest.raises(DomainError):
        post(secret, "Looking into it.")


def test_non_production_triage_and_cancelled_incidents_stay_off_the_page(
    client, declare, api_service
):
    staging = declare(title="Staging flake", environment="staging", services=[api_service])
    post(staging, "Staging is flaky.")
    triage = declare(title="Alert storm", triage=True, services=[api_service])
    name_it(triage, "Alert storm outside")
    cancelled = declare(title="False alarm", services=[api_service])
    name_it(cancelled, "Possible login issue")
    move(cancelled, Status.CANCELLED)
    for url, body in bodies(client).items():
        for text in ("Staging", "Alert storm", "Possible login issue"):
            assert text not in body, (url, text)
    assert "All systems operational" in client.get("/status/").content.decode()


def test_private_services_are_not_listed(client, api_service):
    api_service.public = False
    api_service.save()
    assert client.get("/status.json").json()["services"] == []


# --- wording per status -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "phase", "text"),
    [
        ([], "investigating", "We are investigating reports of a problem"),
        ([Status.INVESTIGATING], "investigating", "We are investigating reports of a problem"),
        ([Status.IDENTIFIED], "identified", "We have identified the cause"),
        ([Status.MONITORING], "monitoring", "A fix is in place and we are monitoring"),
    ],
)
def test_public_wording_follows_the_status(client, declare, api_service, path, phase, text):
    incident = declare(services=[api_service])
    name_it(incident, "Checkout errors")
    move(incident, *path)
    [shown] = client.get("/status.json").json()["open_incidents"]
    assert shown["status"] == phase
    page = client.get("/status/").content.decode()
    assert text in page
    if phase != "investigating":
        assert "We are investigating" not in page


def test_resolved_incident_moves_to_the_history_as_resolved(client, declare, sev2, api_service):
    incident = declare(severity=sev2, services=[api_service])
    post(incident, "Search is slow.")
    move(incident, Status.IDENTIFIED)
    post(incident, "Found the slow query.")
    move(incident, Status.RESOLVED)
    data = client.get("/status.json").json()
    assert data["open_incidents"] == [] and data["overall"] == "operational"
    [recent] = data["recent_incidents"]
    assert (recent["status"], recent["impact"]) == ("resolved", "partial_outage")
    assert [u["status"] for u in recent["updates"]] == ["identified", "investigating"]
    assert feed_entries(client)[0][0] == "Incident affecting Public API — Identified"


# --- uptime bars --------------------------------------------------------------------------

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def incident_at(declare, start, hours, **fields):
    """Declare a public incident at `start` and resolve it `hours` later."""
    with time_machine.travel(start, tick=False) as clock:
        incident = declare(**fields)
        name_it(incident, fields.get("title", "Checkout returns 502"))
        clock.move_to(start + timedelta(hours=hours))
        move(incident, Status.RESOLVED)
    return incident


def test_uptime_bars_colour_each_day_by_its_worst_public_incident(
    client, declare, sev2, default_policy, api_service, web_service
):
    from incidents.models import Severity

    sev3 = Severity.objects.get(key="SEV3")
    # Two on one day: the SEV2 (partial outage) wins over the SEV3 (degraded).
    incident_at(
        declare,
        NOW - timedelta(days=10),
        2,
        title="API slow",
        severity=sev3,
        services=[api_service],
    )
    incident_at(
        declare,
        NOW - timedelta(days=10, hours=-3),
        1,
        title="API errors",
        severity=sev2,
        services=[api_service],
    )
    # Across midnight: both days.
    incident_at(
        declare,
        datetime(2026, 6, 1, 23, 0, tzinfo=UTC),
        2,
        title="Web down",
        services=[web_service],
    )
    # Before the 90 days: not a bar.
    incident_at(declare, NOW - timedelta(days=120), 1, title="Old", services=[api_service])
    # Not public: no colour.
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        declare(title="Unpublished", services=[api_service])
    with time_machine.travel(NOW, tick=False):
        data = client.get("/status.json").json()
        page = client.get("/status/").content.decode()
    days = {s["slug"]: s["days"] for s in data["services"]}
    assert days["api"] == [{"date": "2026-06-05", "impact": "partial_outage"}]
    assert days["web"] == [
        {"date": "2026-06-01", "impact": "major_outage"},
        {"date": "2026-06-02", "impact": "major_outage"},
    ]
    assert (data["uptime_days"], data["uptime_from"]) == (90, "2026-03-18")
    span = (NOW - datetime(2026, 3, 18, tzinfo=UTC)).total_seconds()
    uptime = {s["slug"]: s["uptime"] for s in data["services"]}
    # Degraded performance is no downtime; the partial outage's hour and the 2 h are.
    assert uptime["api"] == round(100 * (1 - 3600 / span), 2)
    assert uptime["web"] == round(100 * (1 - 7200 / span), 2)
    assert page.count('class="day ') == 90 * 2
    assert 'title="5 Jun 2026: Partial outage — API slow; API errors"' in page
    assert 'title="4 Jun 2026: Operational"' in page
    assert "Unpublished" not in page and "Old" not in page


def test_uptime_counts_overlapping_outages_once(client, declare, api_service):
    incident_at(declare, NOW - timedelta(days=5), 2, title="A", services=[api_service])
    incident_at(declare, NOW - timedelta(days=5, hours=-1), 2, title="B", services=[api_service])
    with time_machine.travel(NOW, tick=False):
        [api] = client.get("/status.json").json()["services"]
    span = (NOW - datetime(2026, 3, 18, tzinfo=UTC)).total_seconds()
    assert api["uptime"] == round(100 * (1 - 3 * 3600 / span), 2)


def test_an_open_incident_colours_today_and_counts_until_now(client, declare, api_service):
    with time_machine.travel(NOW, tick=False) as clock:
        incident = declare(services=[api_service])
        post(incident, "Looking into it.")
        clock.move_to(NOW + timedelta(hours=6))
        [api] = client.get("/status.json").json()["services"]
    span = (NOW + timedelta(hours=6) - datetime(2026, 3, 18, tzinfo=UTC)).total_seconds()
    assert api["days"] == [{"date": "2026-06-15", "impact": "major_outage"}]
    assert api["uptime"] == round(100 * (1 - 6 * 3600 / span), 2)


# --- history ----------------------------------------------------------------------------


def test_recent_section_keeps_fourteen_days_and_at_most_twenty(client, declare, api_service):
    incident_at(declare, NOW - timedelta(days=16), 1, title="Too old", services=[api_service])
    for number in range(status_page.RECENT_LIMIT + 2):
        incident_at(
            declare,
            NOW - timedelta(days=3, minutes=number),
            1,
            title=f"Blip {number}",
            services=[api_service],
        )
    with time_machine.travel(NOW, tick=False):
        recent = client.get("/status.json").json()["recent_incidents"]
        page = client.get("/status/").content.decode()
    assert len(recent) == status_page.RECENT_LIMIT
    assert [r["title"] for r in recent[:2]] == ["Blip 0", "Blip 1"]  # latest resolved first
    history = page.split("<h2>Past 14 days</h2>")[1]
    assert history.count('<section class="card incident"') == status_page.RECENT_LIMIT
    assert "Too old" not in history  # still in the uptime bars' hover text


# --- cache --------------------------------------------------------------------------------


def test_a_public_update_shows_at_once_after_a_cached_render(client, public_outage):
    for url in URLS:
        client.get(url)  # cached now
    post(public_outage, "Rolled back the deploy.")
    for url, body in bodies(client).items():
        assert "Rolled back the deploy." in body, url


def test_a_change_shows_on_a_worker_that_was_not_told(client, public_outage, monkeypatch):
    """Without Redis each web worker has its own cache: the one that rendered the page
    never hears the other's invalidation, and must still not serve the old page."""
    client.get("/status/")
    monkeypatch.setattr(status_page, "_bump", lambda: None)
    name_it(public_outage, "Checkout errors")
    assert "Checkout errors" in client.get("/status/").content.decode()
    move(public_outage, Status.IDENTIFIED)
    assert client.get("/status.json").json()["open_incidents"][0]["status"] == "identified"


def test_services_bump_the_shared_generation_on_commit(
    client, public_outage, monkeypatch, django_capture_on_commit_callbacks
):
    """With Redis every worker shares the generation: a bump reaches them all, even for
    a change whose timeline event id is not the newest (an earlier, slower commit)."""
    monkeypatch.setattr(status_page, "_newest_event", lambda: 1)
    client.get("/status/")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(public_outage, "Rolled back the deploy.")
    assert "Rolled back the deploy." not in client.get("/status/").content.decode()  # cached
    for callback in callbacks:
        callback()
    assert "Rolled back the deploy." in client.get("/status/").content.decode()


def test_internal_update_never_appears_even_after_invalidating(client, public_outage):
    client.get("/status/")
    post(public_outage, "Blaming the db-7 team.", Audience.INTERNAL)
    for url, body in bodies(client).items():
        assert "db-7" not in body, url


def test_cached_page_costs_one_query(client, public_outage, django_assert_num_queries):
    for url in URLS:
        client.get(url)
    for url in URLS:
        with django_assert_num_queries(1):  # the generation the cached copy is for
            assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", ["/status/", "/status.json"])
def test_page_and_json_are_sent_gzipped_to_clients_that_take_it(client, public_outage, url):
    plain = client.get(url)
    packed = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    assert packed["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain
    assert gzip.decompress(packed.content) == plain.content
    assert "Accept-Encoding" in plain["Vary"] and "Accept-Encoding" in packed["Vary"]
    assert packed["Content-Type"] == plain["Content-Type"]
    assert "We are looking into errors." in plain.content.decode()


def test_status_page_cache_can_be_turned_off(client, public_outage, settings):
    settings.STATUS_PAGE_CACHE_SECONDS = 0
    client.get("/status/")
    public_outage.updates.filter(audience=Audience.PUBLIC).update(summary="Edited in place.")
    assert "Edited in place." in client.get("/status/").content.decode()


# --- query counts ---------------------------------------------------------------------------


def test_uncached_page_json_and_feed_cost_a_fixed_number_of_queries(
    client, declare, sev2, api_service, web_service, settings, django_assert_max_num_queries
):
    settings.STATUS_PAGE_CACHE_SECONDS = 0

    def more(count):
        for number in range(count):
            incident = declare(severity=sev2, services=[api_service, web_service])
            post(incident, f"Update {number}")
            if number % 2:
                move(incident, Status.RESOLVED)

    def costs():
        counts = {}
        for url in ("/status/", "/status.json", "/status/feed/"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            counts[url] = len(queries)
        return counts

    more(2)
    few = costs()
    more(6)
    # The public services, their 90 days of incidents, the open and the recent incidents
    # and their public updates; the feed: its updates and their incidents' services.
    assert costs() == few == {"/status/": 5, "/status.json": 5, "/status/feed/": 2}


# --- the feed and the public title's edits ------------------------------------------------


def test_atom_feed_carries_public_updates(client, public_outage):
    response = client.get("/status/feed/")
    assert response["Content-Type"].startswith("application/atom+xml")
    assert [summary for _, summary in feed_entries(client)] == ["We are looking into errors."]


def test_public_title_is_cleaned_like_the_title(declare):
    incident = declare()
    incident = name_it(incident, " Checkout \x1b[31merrors ")
    assert incident.public_title == "Checkout [31merrors"
    with pytest.raises(DomainError) as refused:
        name_it(incident, "x" * 201)
    assert refused.value.field == "public_title"
    assert incident.timeline.filter(kind="details_change").last().summary == (
        "Updated public title"
    )


def test_api_reads_and_writes_the_public_title(commander, declare):
    incident = declare()
    api = client_for(commander)
    url = f"/api/v1/incidents/{incident.reference}/"
    assert api.get(url).json()["public_title"] == ""
    response = api.patch(url, {"public_title": "Checkout errors"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["public_title"] == "Checkout errors"
    incident.refresh_from_db()
    assert incident.public_title == "Checkout errors"
    assert api.patch(url, {"public_title": "x" * 201}, format="json").status_code == 400


def test_admin_change_page_edits_the_public_title(commander_client, declare):
    incident = declare()
    page = commander_client.get(f"/admin/incidents/incident/{incident.pk}/change/")
    assert page.status_code == 200
    assert 'name="public_title"' in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/status/", "/status.json"])
def test_browsers_ask_again_on_every_visit(client, url):
    # A browser keeping its copy would hide a public update from the person who posted it.
    response = client.get(url)
    assert "no-cache" in response["Cache-Control"]
    assert "max-age=30" not in response["Cache-Control"]
