"""Shared reads: who may see which incident, and the commander column of lists."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser

from incidents import services
from incidents.models import Incident, Role, Source
from incidents.queries import incident_list_visible_to, with_commander
from tests.conftest import make_user

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def secret(declare, security_type, commander):
    """A confidential security incident declared by the commander."""
    return declare(title="Leaked API keys", incident_type=security_type, actor=commander)


@pytest.fixture
def public(declare):
    return declare(title="Checkout returns 502")


def visible(user):
    return set(incident_list_visible_to(user))


def test_confidential_incident_is_hidden_from_outsider(secret, public, outsider):
    assert visible(outsider) == {public}


def test_confidential_incident_is_visible_to_security_group(secret, public, security_member):
    assert visible(security_member) == {secret, public}


def test_confidential_incident_is_visible_to_superuser(secret, public, django_user_model):
    root = make_user(django_user_model, "root", is_superuser=True, is_staff=True)
    assert visible(root) == {secret, public}


def test_inactive_superuser_loses_the_overview(secret, public, django_user_model):
    root = make_user(django_user_model, "root", is_superuser=True, is_active=False)
    assert visible(root) == {public}


def test_confidential_incident_is_visible_to_its_declarer(secret, public, commander):
    assert visible(commander) == {secret, public}


def test_confidential_incident_is_visible_to_role_holder(secret, public, outsider):
    services.role_assign(incident=secret, role=Role.SCRIBE, user=outsider, source=Source.ADMIN)
    assert visible(outsider) == {secret, public}


def test_confidential_incident_stays_visible_to_former_role_holder(secret, public, outsider):
    with time_machine.travel(T0, tick=False):
        assignment = services.role_assign(
            incident=secret, role=Role.SME, user=outsider, source=Source.ADMIN
        )
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        services.role_relieve(assignment=assignment, source=Source.ADMIN)
    assert visible(outsider) == {secret, public}


def test_role_on_another_incident_does_not_reveal_confidential_one(
    secret, public, outsider, declare, security_type
):
    other = declare(title="Phishing wave", incident_type=security_type)
    services.role_assign(incident=other, role=Role.SCRIBE, user=outsider, source=Source.ADMIN)
    assert visible(outsider) == {other, public}


def test_participant_sees_each_incident_once(secret, outsider):
    services.role_assign(incident=secret, role=Role.SCRIBE, user=outsider, source=Source.ADMIN)
    services.role_assign(incident=secret, role=Role.SME, user=outsider, source=Source.ADMIN)
    visible_pks = list(incident_list_visible_to(outsider).values_list("pk", flat=True))
    assert visible_pks == [secret.pk]


def test_non_confidential_incident_is_visible_to_everyone(
    public, outsider, responder, security_member
):
    for user in (outsider, responder, security_member, AnonymousUser()):
        assert visible(user) == {public}


def test_anonymous_user_sees_only_non_confidential(secret, public):
    assert visible(AnonymousUser()) == {public}


def test_visibility_narrows_a_given_queryset(secret, public, declare, security_member):
    declare(title="Search is slow")
    queryset = Incident.objects.filter(title__startswith="Checkout")
    assert set(incident_list_visible_to(security_member, queryset)) == {public}


def test_with_commander_annotates_current_commander(declare, commander, responder):
    with time_machine.travel(T0, tick=False):
        handed_over = declare(title="Handed over", commander=commander)
        declare(title="Kept", commander=commander)
        declare(title="No commander")
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        services.role_assign(
            incident=handed_over, role=Role.COMMANDER, user=responder, source=Source.ADMIN
        )

    rows = dict(with_commander(Incident.objects.all()).values_list("title", "commander_username"))
    assert rows == {"Handed over": "bob", "Kept": "alice", "No commander": None}


def test_with_commander_is_empty_after_commander_stands_down(declare, commander):
    with time_machine.travel(T0, tick=False):
        incident = declare(commander=commander)
    assignment = incident.roles.get()
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        services.role_relieve(assignment=assignment, source=Source.ADMIN)
    assert with_commander(Incident.objects.all()).get().commander_username is None
