"""The command line: declare, seed_demo, ensure_admin."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from incidents.models import Incident, Role, Source, Status, TimelineEvent


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_declare_by_alias_prints_reference(db, api_service, commander, responder):
    output = run(
        "declare",
        "critical",
        "outage",
        "production",
        "--title",
        "API down",
        "--summary",
        "5xx everywhere",
        "--service",
        "api",
        "--commander",
        "alice",
        "--as",
        "bob",
    )
    incident = Incident.objects.get()
    assert output.strip().splitlines()[-1] == incident.reference
    assert incident.severity.key == "SEV1"
    assert incident.summary == "5xx everywhere"
    assert list(incident.services.all()) == [api_service]
    assert incident.roles.get(role=Role.COMMANDER).user == commander
    assert incident.declared_by == responder
    assert incident.history.earliest().history_user == responder
    assert incident.timeline.get(kind=TimelineEvent.Kind.DECLARED).source == Source.CLI


def test_declare_accepts_severity_key_in_any_case(db):
    run("declare", "sev3", "performance", "staging", "--title", "Slow search")
    assert Incident.objects.get().severity.key == "SEV3"


def test_declare_security_incident_is_confidential(db):
    run("declare", "high", "security", "production", "--title", "Token leaked")
    assert Incident.objects.get().confidential


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["urgent", "outage", "production"], "Unknown severity 'urgent'; valid: SEV1, critical"),
        (["critical", "fire", "production"], "Unknown type 'fire'; valid: data, integration"),
        (["critical", "outage", "moon"], "Unknown environment 'moon'; valid: production"),
    ],
)
def test_declare_rejects_unknown_values_listing_valid_ones(db, args, complaint):
    with pytest.raises(CommandError, match=complaint):
        run("declare", *args, "--title", "x")
    assert not Incident.objects.exists()


def test_declare_rejects_unknown_service_and_user(db, api_service):
    with pytest.raises(CommandError, match="Unknown service"):
        run("declare", "low", "outage", "production", "--title", "x", "--service", "nope")
    with pytest.raises(CommandError, match="--commander: no active user named 'ghost'"):
        run("declare", "low", "outage", "production", "--title", "x", "--commander", "ghost")
    assert not Incident.objects.exists()


def test_declare_rejects_blank_title(db):
    with pytest.raises(CommandError, match="A title is required"):
        run("declare", "low", "outage", "production", "--title", "   ")
    assert not Incident.objects.exists()


def test_declare_exits_non_zero_from_the_shell(db, capsys):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(
            ["manage.py", "declare", "huge", "outage", "production", "--title", "x"]
        )
    assert exit_info.value.code == 1
    assert "valid: SEV1" in capsys.readouterr().err


def test_seed_demo_builds_every_state_and_severity_and_is_idempotent(db):
    run("seed_demo")
    statuses = set(Incident.objects.values_list("status", flat=True))
    severities = set(Incident.objects.values_list("severity__key", flat=True))
    assert statuses == set(Status.values)
    assert severities == {"SEV1", "SEV2", "SEV3", "SEV4"}
    # 40 from the history, the live SEV1 the rota is paged for, the triage candidate the
    # demo's live alerts opened, and the live security incident with its breach clock.
    assert Incident.objects.count() == 43
    assert Incident.objects.filter(alert_group__isnull=False, status=Status.TRIAGE).count() == 1
    counts = (
        Incident.objects.count(),
        TimelineEvent.objects.count(),
        get_user_model().objects.count(),
    )
    run("seed_demo")
    assert (
        Incident.objects.count(),
        TimelineEvent.objects.count(),
        get_user_model().objects.count(),
    ) == counts


def test_seed_demo_incidents_have_consistent_milestones(db):
    run("seed_demo")
    for incident in Incident.objects.exclude(status__in=["triage", "cancelled"]):
        assert incident.started_at <= incident.detected_at <= incident.declared_at
        stamps = [
            incident.declared_at,
            incident.acknowledged_at,
            incident.identified_at,
            incident.mitigated_at,
            incident.resolved_at,
            incident.closed_at,
        ]
        reached = [stamp for stamp in stamps if stamp is not None]
        assert reached == sorted(reached), incident.reference
    closed = Incident.objects.filter(status="closed").first()
    assert closed.timeline.filter(kind="status_change").count() >= 4


def test_ensure_admin_prints_a_random_password_once(db):
    first = run("ensure_admin")
    admin = get_user_model().objects.get(username="admin")
    password = first.split("password:")[1].split()[0]
    assert admin.is_superuser and admin.check_password(password)
    second = run("ensure_admin")
    assert "password:" not in second
    other_db_password = run("ensure_admin", "--username", "root").split("password:")[1].split()[0]
    assert other_db_password != password


def test_declare_without_as_records_the_login_name_when_it_is_a_user(db, monkeypatch, commander):
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    run("declare", "low", "outage", "production", "--title", "Typo on pricing page")
    assert Incident.objects.get().declared_by == commander
