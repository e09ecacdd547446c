"""The on-call defaults the migration loads: the reference's activation and stuck rules,
and a default escalation policy that keeps the core's ladder paging as it did."""

from datetime import timedelta

import pytest
import time_machine
from django.apps import apps
from django.utils import timezone

from incidents import extensions
from incidents.models import ChannelTarget, EscalationLevel, Notification, Severity
from oncall.defaults import load_default_policy, load_defaults
from oncall.models import ActivationRule, EscalationPolicy, Page, StuckRule

pytestmark = pytest.mark.django_db


def roles_of(key):
    return {
        (rule.role, tuple(sorted(t.slug for t in rule.incident_types.all())))
        for rule in ActivationRule.objects.filter(severity__key=key)
    }


def test_the_reference_activation_rules_are_loaded(default_policy):
    load_defaults(apps)
    full_team = {
        ("commander", ()),
        ("technical_lead", ()),
        ("communications_lead", ()),
        ("scribe", ()),
        ("security_lead", ("data", "security")),
    }
    assert roles_of("SEV1") == full_team
    assert roles_of("SEV2") == full_team
    assert roles_of("SEV3") == {("technical_lead", ()), ("scribe", ())}
    assert roles_of("SEV4") == {("technical_lead", ()), ("scribe", ())}
    assert set(StuckRule.objects.values_list("severity__key", flat=True)) == {"SEV1", "SEV2"}
    load_defaults(apps)  # again: nothing twice
    assert ActivationRule.objects.filter(severity__key="SEV1").count() == 5


def test_without_a_staffed_ladder_the_default_policy_is_the_references(default_policy):
    EscalationPolicy.objects.all().delete()
    EscalationLevel.objects.get_or_create(level=1, defaults={"name": "On-call engineers"})
    load_default_policy(apps)
    policy = EscalationPolicy.objects.get(is_default=True)
    levels = [(level.number, level.delay, level.incident_team) for level in policy.levels.all()]
    assert levels == [
        (1, timedelta(0), True),
        (2, timedelta(minutes=15), False),
        (3, timedelta(minutes=30), False),
        (4, timedelta(hours=1), False),
    ]


def test_a_staffed_ladder_becomes_the_default_policy_and_pages_as_it_did(
    default_policy, declare, commander, responder
):
    EscalationPolicy.objects.all().delete()
    EscalationLevel.objects.all().delete()
    pager = ChannelTarget.objects.create(name="Ops pager", kind="slack", address="https://x.test/h")
    first = EscalationLevel.objects.create(level=1, name="On-call engineers")
    first.members.add(responder)
    first.targets.add(pager)
    EscalationLevel.objects.create(level=2, name="Leads").members.add(commander)
    load_default_policy(apps)

    policy = EscalationPolicy.objects.get(is_default=True)
    levels = list(policy.levels.all())
    assert [(level.number, level.name, level.delay) for level in levels] == [
        (1, "On-call engineers", None),
        (2, "Leads", None),
    ]
    assert list(levels[0].users.all()) == [responder]
    assert list(levels[0].targets.all()) == [pager]
    # The admin stops listing the ladder: on-call pages instead.
    assert not extensions.paging.get().uses_ladder

    sev2 = Severity.objects.get(key="SEV2")
    incident = declare(severity=sev2, commander=commander)
    paging = extensions.paging.get()
    # Level 1 at the acknowledgement deadline, as the ladder paged it; not before.
    with time_machine.travel(incident.ack_due_at - timedelta(minutes=1), tick=False):
        paging.escalate()
    assert not Page.objects.filter(incident=incident, user=responder).exists()
    with time_machine.travel(incident.ack_due_at + timedelta(minutes=1), tick=False):
        paging.escalate()
    assert Page.objects.filter(incident=incident, user=responder, level=1).exists()
    assert Notification.objects.filter(incident=incident, target=pager).exists()
    assert incident.ack_due_at < timezone.now() + timedelta(days=1)
