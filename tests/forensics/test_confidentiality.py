"""Evidence, custody and the breach assessment of a confidential incident are for its
participants and the security group alone — in the admin, the API and the download —
and a 404 for everyone else, as the incident itself is."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from forensics.models import CustodyRecord
from incidents import services as incidents
from incidents.models import Role, Source

pytestmark = pytest.mark.django_db


@pytest.fixture
def item(breach, upload):
    return upload(breach, b"secret bytes", description="the secret log")


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_outsider_gets_404_from_every_api_route(outsider, item, breach):
    client = api_as(outsider)
    for url in (
        f"/api/v1/evidence/{item.pk}/",
        f"/api/v1/evidence/{item.pk}/download/",
        f"/api/v1/evidence/{item.pk}/custody/",
        f"/api/v1/incidents/{breach.reference}/evidence/",
        f"/api/v1/incidents/{breach.reference}/evidence/export/",
        f"/api/v1/incidents/{breach.reference}/breach/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"secret" not in b"".join(getattr(response, "streaming_content", [response.content]))
    response = client.post(
        f"/api/v1/incidents/{breach.reference}/evidence/",
        {"kind": "other", "description": "x", "external_location": "safe"},
        format="json",
    )
    assert response.status_code == 404
    assert (
        client.patch(f"/api/v1/incidents/{breach.reference}/breach/", {}, format="json").status_code
        == 404
    )
    assert not item.custody.exclude(action="uploaded").exists()


def test_an_outsider_gets_404_from_the_download_and_sees_nothing_in_the_admin(
    client, outsider, item
):
    client.force_login(outsider)

    download = client.get(reverse("forensics:evidence-download", args=[item.pk]))
    assert download.status_code == 404
    changelist = client.get(reverse("admin:forensics_evidenceitem_changelist"))
    assert list(changelist.context["cl"].result_list) == []
    change = client.get(reverse("admin:forensics_evidenceitem_change", args=[item.pk]))
    assert change.status_code == 302  # the admin's "no such item" redirect
    custody = client.get(reverse("admin:forensics_custodyrecord_changelist"))
    assert list(custody.context["cl"].result_list) == []
    breaches = client.get(reverse("admin:forensics_breachassessment_changelist"))
    assert list(breaches.context["cl"].result_list) == []
    assert not item.custody.exclude(action="uploaded").exists()


def test_the_security_group_sees_and_downloads_it(client, security_member, item):
    client.force_login(security_member)
    response = client.get(reverse("forensics:evidence-download", args=[item.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"secret bytes"
    assert api_as(security_member).get(f"/api/v1/evidence/{item.pk}/").status_code == 200


def test_a_participant_given_a_role_sees_it(client, outsider, commander, breach, item):
    incidents.role_assign(
        incident=breach, role=Role.SME, user=outsider, actor=commander, source=Source.ADMIN
    )
    client.force_login(outsider)

    assert client.get(reverse("forensics:evidence-download", args=[item.pk])).status_code == 200
    assert api_as(outsider).get(f"/api/v1/incidents/{breach.reference}/breach/").status_code == 200


def test_the_download_needs_a_signed_in_staff_member_with_the_permission(
    client, item, django_user_model
):
    from tests.conftest import make_user

    url = reverse("forensics:evidence-download", args=[item.pk])
    assert client.get(url).status_code == 302  # to the sign-in page
    stakeholder = make_user(django_user_model, "sam", "Stakeholders", is_staff=True)
    client.force_login(stakeholder)
    assert client.get(url).status_code == 403
    assert not CustodyRecord.objects.exclude(action="uploaded").exists()


def test_the_incidents_autocomplete_offers_no_hidden_incident_for_evidence(
    client, outsider, breach
):
    client.force_login(outsider)
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "forensics",
            "model_name": "evidenceitem",
            "field_name": "incident",
            "term": breach.reference,
        },
    )

    assert response.json()["results"] == []
