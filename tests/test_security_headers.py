"""Content-Security-Policy (django-csp) on every response we serve, and pages that obey it:
no inline script but our own nonce'd one, nothing from another origin."""

import re
from html.parser import HTMLParser

import pytest

from incidents import services
from incidents.models import Audience, Source
from tests.api import client_for
from tests.conftest import make_user
from tests.reviews import publish_review, resolve

POLICY = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'", "'unsafe-inline'"},
    "img-src": {"'self'", "data:"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def policy(response) -> dict[str, set[str]]:
    """Return the response's Content-Security-Policy as {directive: sources}."""
    header = response["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: set(sources) for name, *sources in directives}


class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts = []  # (attrs, body)
        self.handlers = []
        self.urls = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.handlers += [(tag, name) for name in attrs if name.startswith("on")]
        self.urls += [attrs[name] or "" for name in ("src", "href", "action") if name in attrs]
        if tag == "script":
            self._open = [attrs, ""]
            self.scripts.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def assert_obeys_policy(response):
    """Every script is from here or carries the nonce; no handlers; nothing from elsewhere."""
    sources = policy(response)
    nonces = {source[7:-1] for source in sources["script-src"] if source.startswith("'nonce-")}
    page = _Scripts()
    page.feed(response.content.decode())
    for attrs, body in page.scripts:
        if attrs.get("src"):
            assert attrs["src"].startswith("/"), attrs
            assert not body.strip()
        elif attrs.get("type") != "application/json":  # data, never run
            assert attrs.get("nonce") in nonces, (attrs, body[:200])
    assert page.handlers == []
    loaded = [url for url in page.urls if re.match(r"(https?:)?//", url)]
    assert loaded == [], "nothing loads from another origin"


@pytest.fixture
def published(declare, commander):
    incident = declare(title="Checkout returns 502", commander=commander)
    resolve(incident)
    return publish_review(incident)


@pytest.fixture
def stakeholder_client(client, django_user_model):
    client.force_login(make_user(django_user_model, "sam", "Stakeholders"))
    return client


def test_policy_is_the_documented_one(client, db):
    assert policy(client.get("/status/")) == POLICY


def test_admin_pages_carry_the_policy_and_obey_it(commander_client, declare):
    incident = declare()
    for url in (
        "/admin/",
        "/admin/incidents/incident/",
        f"/admin/incidents/incident/{incident.pk}/change/",
        "/admin/incidents/incident/declare/",
        f"/admin/incidents/incident/{incident.pk}/history/",
    ):
        response = commander_client.get(url)
        assert response.status_code == 200, url
        assert policy(response) == POLICY, url
        assert_obeys_policy(response)


def test_sign_in_and_lockout_pages_carry_the_policy(client, db):
    for url in ("/accounts/login/", "/admin/login/"):
        response = client.get(url)
        assert policy(response) == POLICY
        assert_obeys_policy(response)
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "sam", "password": "guess"})
    assert response.status_code == 429
    assert policy(response) == POLICY
    assert_obeys_policy(response)


def test_api_responses_carry_the_policy(commander, declare):
    incident = declare()
    api = client_for(commander)
    for url in (
        "/api/v1/incidents/",
        f"/api/v1/incidents/{incident.reference}/",
        "/api/v1/incidents/INC-1999-0001/",  # a 404
        "/api/schema/",
    ):
        assert policy(api.get(url)) == POLICY, url
    assert policy(type(api)().get("/api/v1/incidents/")) == POLICY  # a 401


def test_status_page_json_and_feed_carry_the_policy(client, declare, api_service):
    incident = declare(services=[api_service])
    services.status_update_post(
        incident=incident,
        audience=Audience.PUBLIC,
        summary="Rolling back.",
        source=Source.ADMIN,
    )
    for url in ("/status/", "/status.json", "/status/feed/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert policy(response) == POLICY, url
    assert_obeys_policy(client.get("/status/"))


def test_post_mortem_pages_carry_the_policy(stakeholder_client, published):
    reference = published.incident.reference
    listing = stakeholder_client.get("/postmortems/")
    assert policy(listing) == POLICY
    assert_obeys_policy(listing)
    assert policy(stakeholder_client.get(f"/postmortems/{reference}.md")) == POLICY

    detail = stakeholder_client.get(f"/postmortems/{reference}/")
    assert detail.status_code == 200
    # The print link's script runs by this response's own nonce, fresh on every response.
    sources = policy(detail)
    nonce = {source for source in sources["script-src"] if source.startswith("'nonce-")}
    assert len(nonce) == 1
    assert sources == {**POLICY, "script-src": {"'self'", *nonce}}
    assert_obeys_policy(detail)
    assert nonce != {
        source
        for source in policy(stakeholder_client.get(f"/postmortems/{reference}/"))["script-src"]
        if source.startswith("'nonce-")
    }


def test_swagger_ui_starts_from_a_script_url_not_inline(client, db):
    page = client.get("/api/docs/")
    assert policy(page) == POLICY
    assert_obeys_policy(page)
    assert '<script src="/api/docs/?script="></script>' in page.content.decode()
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()
    # No badge fetched from swagger.io's online validator.
    assert '"validatorUrl": null' in script.content.decode()


def test_redoc_loads_no_outside_fonts_and_may_start_its_worker(client, db):
    page = client.get("/api/redoc/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "fonts.googleapis.com" not in body and "fonts.gstatic.com" not in body
    assert_obeys_policy(page)
    assert policy(page) == {**POLICY, "worker-src": {"'self'", "blob:"}}
