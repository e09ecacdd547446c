"""Error pages: styled HTML for people (404, 403, 500), the API's JSON shape under /api/.
The test settings run with DEBUG=False, as production does."""

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import RequestFactory, override_settings
from django.urls import path

from config import urls as project_urls
from incidents import services
from incidents.api import errors
from incidents.models import Role, Source
from tests.conftest import make_user
from tests.reviews import publish_review, resolve


def crash(request):
    raise RuntimeError("the database went away")


# This module doubles as a URLconf: the project's, plus a view that crashes.
urlpatterns = [path("boom/", crash), path("api/v1/boom/", crash), *project_urls.urlpatterns]
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500


def styled(response) -> str:
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert 'class="error-page card"' in body
    assert 'rel="icon"' in body
    return body


@pytest.fixture
def stakeholder_client(client, django_user_model):
    client.force_login(make_user(django_user_model, "sam", "Stakeholders"))
    return client


def test_the_test_settings_hide_debug_pages():
    assert settings.DEBUG is False


@pytest.mark.django_db
def test_an_unknown_page_answers_the_styled_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Nothing here" in styled(response)


@pytest.mark.django_db
def test_an_unknown_api_url_still_answers_json(client):
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


@pytest.mark.django_db
def test_a_confidential_review_answers_the_styled_404_without_naming_it(
    stakeholder_client, declare, security_type, commander, django_user_model
):
    secret = declare(title="Token leaked", incident_type=security_type, commander=commander)
    # The review's writer and reviewer (tests.reviews) take part, so may see it.
    for username in ("wes-writer", "rita-reviewer"):
        services.role_assign(
            incident=secret,
            role=Role.SME,
            user=make_user(django_user_model, username),
            source=Source.ADMIN,
        )
    resolve(secret)
    publish_review(secret)
    response = stakeholder_client.get(f"/postmortems/{secret.reference}/")
    assert response.status_code == 404
    body = styled(response)
    assert "Token leaked" not in body and secret.reference not in body
    # The same review is there for someone who may see it: the 404 above can fail.
    stakeholder_client.force_login(commander)
    assert stakeholder_client.get(f"/postmortems/{secret.reference}/").status_code == 200


@pytest.mark.django_db
def test_a_page_the_user_may_not_open_answers_the_styled_403(client, django_user_model):
    client.force_login(make_user(django_user_model, "nobody"))  # in no group
    response = client.get("/postmortems/")
    assert response.status_code == 403
    body = styled(response)
    assert "You may not open this page" in body
    assert "signed in as <strong>nobody</strong>" in body


def test_a_refusal_under_api_is_json():
    request = RequestFactory().get("/api/v1/incidents/")
    response = errors.permission_denied(request, PermissionError())
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_a_crash_answers_the_styled_500(client):
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in styled(response)
    assert "the database went away" not in response.content.decode()


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_a_crash_under_api_answers_json(client):
    client.raise_request_exception = False
    response = client.get("/api/v1/boom/")
    assert response.status_code == 500
    assert response.json()["type"] == "server_error"


def test_the_500_page_needs_no_context_and_no_database():
    # No django_db mark: any query while rendering would raise here.
    body = render_to_string("500.html")
    assert "Something went wrong on our side" in body


@pytest.mark.django_db
def test_favicon_ico_points_at_our_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/incidents/favicon.svg"
