"""The system check (and the admin banner's reading): what would page nobody right now."""

from datetime import UTC, datetime
from unittest import mock

import pytest
import time_machine
from django.core import checks
from django.db import DatabaseError

from incidents.models import ChannelTarget
from oncall.checks import check_activation_gaps
from oncall.models import ActivationRule, EscalationPolicy, OnCallRole, PolicyLevel
from oncall.queries import activation_gaps

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("at_noon")]


@pytest.fixture
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def only_sev3_rules(default_policy):
    """SEV3 needs a technical lead and a scribe; no other severity activates anyone; no
    escalation policy yet (the migration's, made from the empty ladder, pages nobody)."""
    ActivationRule.objects.exclude(severity__key="SEV3").delete()
    EscalationPolicy.objects.all().delete()


@pytest.fixture
def staffed_default(make_team, make_rotation, make_person, make_policy):
    team = make_team("Front desk", is_default=True)
    make_rotation(team, OnCallRole.TECHNICAL_LEAD, members=[make_person("tess")])
    make_rotation(team, OnCallRole.SCRIBE, members=[make_person("sam")])
    make_policy(levels=[{"name": "Team", "incident_team": True}])
    return team


def messages():
    return [
        (warning.id, warning.msg) for warning in check_activation_gaps(None, databases=["default"])
    ]


def test_all_staffed_gives_no_warning(only_sev3_rules, staffed_default):
    assert messages() == []


def test_no_default_team_and_no_team_owning_a_service_is_flagged(only_sev3_rules, make_policy):
    make_policy(levels=[{"name": "Team", "incident_team": True}])
    assert messages() == [
        (
            "oncall.W001",
            "SEV3 activation: no team owns a service and there is no default team: "
            "declaring it pages nobody",
        )
    ]


def test_a_role_nobody_is_on_call_for_in_the_default_team_is_flagged(
    only_sev3_rules, staffed_default
):
    staffed_default.rotations.filter(role=OnCallRole.SCRIBE).delete()
    assert messages() == [
        (
            "oncall.W001",
            "SEV3 activation: nobody is on call in Front desk (the default team) for scribe",
        )
    ]


def test_everyone_on_call_unreachable_is_flagged(only_sev3_rules, staffed_default):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="sam").update(email="")
    assert [msg for _, msg in messages()] == [
        "SEV3 activation: whoever is on call in Front desk for scribe has no verified "
        "contact method and no email address"
    ]


def test_a_policy_level_that_targets_nobody_is_flagged(only_sev3_rules, staffed_default):
    policy = PolicyLevel.objects.get(name="Team").policy
    level = PolicyLevel.objects.create(policy=policy, number=2, name="Managers")
    assert messages() == [
        (
            "oncall.W002",
            "Platform escalation L2 Managers: the level has no people, rotations, teams or "
            "enabled channels: reaching it pages nobody",
        )
    ]
    # A disabled channel reaches nobody either; an enabled one does.
    channel = ChannelTarget.objects.create(
        name="#mgmt", kind="webhook", address="https://hooks.example.com/m", enabled=False
    )
    level.targets.add(channel)
    assert [check_id for check_id, _ in messages()] == ["oncall.W002"]
    ChannelTarget.objects.filter(pk=channel.pk).update(enabled=True)
    assert messages() == []


def test_no_default_policy_is_flagged(only_sev3_rules, staffed_default):
    EscalationPolicy.objects.update(is_default=False)
    assert [check_id for check_id, _ in messages()] == ["oncall.W003"]


def test_the_check_is_a_database_check_and_its_warnings_carry_hints(only_sev3_rules, make_policy):
    # Run by migrate and `check --database default`, not by every manage.py command.
    assert not [w for w in checks.run_checks() if w.id and w.id.startswith("oncall.")]
    warnings = [
        w for w in checks.run_checks(databases=["default"]) if w.id and w.id.startswith("oncall.")
    ]
    assert warnings and all(isinstance(w, checks.Warning) and w.hint for w in warnings)


def test_missing_tables_give_no_warning_and_no_crash():
    with mock.patch("oncall.queries.activation_gaps", side_effect=DatabaseError("no table")):
        assert check_activation_gaps(None, databases=["default"]) == []


def test_the_gaps_cost_a_fixed_number_of_queries(
    only_sev3_rules, staffed_default, make_team, make_rotation, make_person,
    django_assert_max_num_queries,
):  # fmt: skip
    for n in range(10):
        team = make_team(f"Team {n}")
        make_rotation(team, OnCallRole.SCRIBE, members=[make_person(f"p{n}")])
    with django_assert_max_num_queries(12):
        assert activation_gaps() == []
