"""The demo's stakeholders read as stakeholders do: the status page and published
post-mortems through the stakeholder sign-in, never the incident console."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from postmortems.models import PostMortem


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=StringIO())


@pytest.fixture
def grace(demo):
    """The seeded stakeholder, with a password (demo people are seeded without one)."""
    user = get_user_model().objects.get(username="grace")
    user.set_password("grace-reads-reviews")
    user.save()
    return user


def test_the_seeded_stakeholders_are_not_staff(demo):
    stakeholders = get_user_model().objects.filter(groups__name="Stakeholders")
    assert sorted(stakeholders.values_list("username", flat=True)) == ["grace", "henry"]
    assert not stakeholders.filter(is_staff=True).exists()
    # The responders still are.
    assert get_user_model().objects.get(username="alice").is_staff


def sign_in(client, next_url="/postmortems/"):
    credentials = {"username": "grace", "password": "grace-reads-reviews", "next": next_url}
    return client.post(reverse("login"), credentials)


def test_the_seeded_stakeholder_cannot_open_the_admin(client, grace):
    assert sign_in(client).status_code == 302
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    response = client.get(reverse("admin:incidents_incident_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    # Nor does the admin's own sign-in let them in.
    client.logout()
    credentials = {"username": "grace", "password": "grace-reads-reviews", "next": "/admin/"}
    refused = client.post(reverse("admin:login"), credentials)
    assert refused.status_code == 200
    assert "staff account" in refused.content.decode()


def test_the_seeded_stakeholder_reads_published_reviews_and_the_status_page(client, grace):
    response = sign_in(client)
    assert response.status_code == 302 and response["Location"] == "/postmortems/"
    published = PostMortem.objects.filter(
        status=PostMortem.Status.PUBLISHED, incident__confidential=False
    ).first()
    assert published is not None, "the demo publishes reviews"
    listing = client.get("/postmortems/")
    assert listing.status_code == 200
    assert published.incident.reference in listing.content.decode()
    detail = client.get(reverse("postmortems:detail", args=[published.incident.reference]))
    assert detail.status_code == 200
    assert client.get("/status/").status_code == 200


def test_seeding_again_takes_staff_access_from_stakeholders_seeded_with_it(demo):
    get_user_model().objects.filter(username="henry").update(is_staff=True)
    call_command("seed_demo", stdout=StringIO())
    assert not get_user_model().objects.get(username="henry").is_staff
