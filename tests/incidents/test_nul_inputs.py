"""A NUL character in a path or query string is a 400 everywhere, never a 500.

PostgreSQL refuses NUL in a query with an error, so every filter, search and
autocomplete term that reached the database with one used to answer 500 there.
"""

import pytest

from tests.api import client_for

ADMIN_URLS = [
    "/admin/incidents/incident/?environment__exact=a%00b",
    "/admin/incidents/incident/?q=a%00b",
    "/admin/remediation/actionitem/?team__exact=a%00b",
    "/admin/incidents/service/?owning_team=a%00b",
    "/admin/autocomplete/?app_label=postmortems&model_name=postmortem"
    "&field_name=related_incidents&term=a%00b",
    "/admin/incidents/incident/a%00b/change/",
]
API_URLS = [
    "/api/v1/remediation/report/?team=a%00b",
    "/api/v1/incidents/?search=a%00b",
    "/api/v1/incidents/?service=a%00b",
    "/api/v1/action-items/?team=a%00b",
    "/api/v1/postmortems/?search=a%00b",
    "/api/v1/services/a%00b/",
    "/api/v1/incidents/?a%00b=1",
]


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_admin_refuses_nul_in_filters_and_searches(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    assert "Null characters are not allowed" in response.content.decode()


@pytest.mark.parametrize("url", API_URLS)
def test_api_refuses_nul_with_its_error_shape(db, commander, url):
    response = client_for(commander).get(url)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    [error] = body["errors"]
    assert error["code"] == "null_characters_not_allowed"
    assert error["attr"] is None


def test_public_pages_refuse_nul_too(client, db):
    assert client.get("/status/?x=%00").status_code == 400
    assert client.get("/postmortems/?q=a%00b").status_code == 400


def test_ordinary_queries_pass(admin_client, db):
    assert admin_client.get("/admin/incidents/incident/?q=db-7").status_code == 200


def test_a_cookie_holding_a_nul_is_dropped_not_looked_up(client, admin_user):
    # Django decodes the octal escape into a NUL in the session key; PostgreSQL would
    # refuse the lookup with a 500. Such a cookie counts as none: signed out.
    response = client.get("/admin/", HTTP_COOKIE='sessionid="abcdefgh\\000ijkl"')
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
    assert client.get("/status/", HTTP_COOKIE='csrftoken="a\\000b"').status_code == 200
