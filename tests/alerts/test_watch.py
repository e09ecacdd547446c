"""What the scheduler runs every minute: heartbeats (a source gone quiet raises an alert
through the rules), alerts whose "firing for" time or silence is up, the sweeper that
takes in payloads a failure left behind; and, daily, forgetting old raw payloads.

Time is moved with time-machine, never slept: the services take `now` from the clock."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from alerts.models import Alert, AlertPayload, AlertSource, DetectionRule
from alerts.services import (
    HEARTBEAT_ALERTNAME,
    alerts_evaluate_due,
    alerts_judge_again,
    heartbeats_check,
    intake,
    payload_retry,
    payloads_prune,
    payloads_sweep,
    rule_save,
    silence_expire,
    silence_save,
    source_update,
)
from incidents.models import Incident, Status, TimelineEvent


@pytest.fixture
def clock(db):
    with time_machine.travel(timezone.now().replace(microsecond=0), tick=False) as traveller:
        yield traveller


def alert_events(incident):
    return list(
        TimelineEvent.objects.filter(incident=incident, kind="alert")
        .order_by("pk")
        .values_list("summary", flat=True)
    )


def heartbeat(post_alerts, source, secret):
    return post_alerts(f"{source.name}/heartbeat", b"", secret=secret)


# --- heartbeats ------------------------------------------------------------------------


@pytest.fixture
def watched(clock, make_source, default_rules):
    """An Alertmanager source expected to be heard from every 5 minutes."""
    return make_source("prometheus", "alertmanager", heartbeat_minutes=5)


def test_a_quiet_source_raises_one_alert_and_a_triage_incident(clock, watched):
    source, _ = watched
    clock.shift(timedelta(minutes=4))
    assert heartbeats_check() == 0
    assert not Alert.objects.exists()

    clock.shift(timedelta(minutes=2))
    assert heartbeats_check() == 1

    alert = Alert.objects.get()
    assert alert.status == Alert.Status.FIRING
    assert alert.labels == {
        "alertname": HEARTBEAT_ALERTNAME,
        "source": "prometheus",
        "severity": "medium",
    }
    assert alert.title == "Prometheus Alertmanager source prometheus has gone quiet"
    assert "expects one at least every 5 min" in alert.annotations["description"]
    assert alert.rule.name == "Heartbeat missing"
    incident = alert.incident
    assert incident.status == Status.TRIAGE
    assert incident.title == "Monitoring source prometheus has gone quiet"
    assert incident.severity.key == "SEV3"
    assert incident.incident_type.slug == "integration"
    source.refresh_from_db()
    assert source.quiet_since == timezone.now()
    # The synthetic alert is kept as a payload like any other.
    assert AlertPayload.objects.get(source=source).content_type.endswith("sitrep=heartbeat")


def test_a_second_check_raises_nothing_more(clock, watched):
    clock.shift(timedelta(minutes=6))
    heartbeats_check()
    for _ in range(3):
        clock.shift(timedelta(minutes=5))
        assert heartbeats_check() == 0

    assert Alert.objects.count() == 1
    assert Incident.objects.count() == 1
    assert Alert.objects.get().times_received == 1


def test_a_heartbeat_post_resolves_the_quiet_alert(clock, watched, post_alerts):
    source, secret = watched
    clock.shift(timedelta(minutes=6))
    heartbeats_check()
    clock.shift(timedelta(minutes=2))

    response = heartbeat(post_alerts, source, secret)

    assert response.status_code == 200, response.content
    assert response.json()["source"] == "prometheus"
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.resolved_at == timezone.now()
    source.refresh_from_db()
    assert source.quiet_since is None
    assert source.last_heartbeat_at == timezone.now()
    assert alert_events(alert.incident) == [
        "Alert fired: Prometheus Alertmanager source prometheus has gone quiet",
        "Alert resolved: Prometheus Alertmanager source prometheus has gone quiet",
        "The alert resolved",
    ]


def test_a_source_quiet_again_fires_again_in_its_open_incident(clock, watched, post_alerts):
    source, secret = watched
    clock.shift(timedelta(minutes=6))
    heartbeats_check()
    clock.shift(timedelta(minutes=1))
    heartbeat(post_alerts, source, secret)

    clock.shift(timedelta(minutes=4))
    assert heartbeats_check() == 0  # heard 4 minutes ago
    clock.shift(timedelta(minutes=2))
    assert heartbeats_check() == 1

    assert Incident.objects.count() == 1
    assert Alert.objects.filter(status=Alert.Status.FIRING).count() == 1
    assert alert_events(Incident.objects.get())[-1].startswith("Alert fired again: ")


def test_a_heartbeat_ping_keeps_the_source_alive(clock, watched, post_alerts):
    source, secret = watched
    for _ in range(3):
        clock.shift(timedelta(minutes=4))
        assert heartbeat(post_alerts, source, secret).status_code == 200
        assert heartbeats_check() == 0
    assert not Alert.objects.exists()


def test_any_payload_counts_as_a_heartbeat(clock, watched, post_alerts, am_payload, am_alert):
    source, secret = watched
    clock.shift(timedelta(minutes=3))
    assert post_alerts("alertmanager", am_payload(am_alert()), secret=secret).status_code == 200

    clock.shift(timedelta(minutes=3))
    assert heartbeats_check() == 0
    clock.shift(timedelta(minutes=3))
    assert heartbeats_check() == 1


def test_a_payload_from_a_quiet_source_resolves_its_quiet_alert(
    clock, watched, post_alerts, am_payload, am_alert
):
    source, secret = watched
    clock.shift(timedelta(minutes=6))
    heartbeats_check()
    clock.shift(timedelta(minutes=1))

    response = post_alerts("alertmanager", am_payload(am_alert()), secret=secret)

    assert response.status_code == 200
    assert Alert.objects.get(fingerprint="heartbeat:prometheus").status == Alert.Status.RESOLVED
    source.refresh_from_db()
    assert source.quiet_since is None


def test_only_enabled_sources_with_a_heartbeat_are_watched(clock, make_source, default_rules):
    make_source("no-heartbeat", "alertmanager")
    disabled, _ = make_source("disabled", "generic", heartbeat_minutes=1)
    source_update(source=disabled, enabled=False)

    clock.shift(timedelta(days=1))
    assert heartbeats_check() == 0
    assert not Alert.objects.exists()


def test_the_heartbeat_endpoint_checks_the_source(clock, watched, make_source, post_alerts):
    source, secret = watched
    other, other_secret = make_source("grafana", "grafana")

    assert heartbeat(post_alerts, source, other_secret).status_code == 403
    assert post_alerts("prometheus/heartbeat", b"").status_code == 401
    assert post_alerts("prometheus/heartbeat", b"", secret="1.nope").status_code == 401
    source_update(source=source, enabled=False)
    assert heartbeat(post_alerts, source, secret).status_code == 403
    assert AlertSource.objects.get(pk=source.pk).last_heartbeat_at is None


def test_a_source_never_heard_from_is_quiet_from_its_creation(clock, watched):
    clock.shift(timedelta(minutes=5))
    assert heartbeats_check() == 1
    assert (
        "Sitrep has had no payload or heartbeat from prometheus ever"
        in (Alert.objects.get().annotations["description"])
    )


# --- the sweeper -----------------------------------------------------------------------


@pytest.fixture
def failing_ingest(monkeypatch):
    """Make taking alerts in fail `times` times (a bug, a lost connection), then work."""
    real = intake.ingest
    state = {"left": 0}

    def ingest(**kwargs):
        if state["left"]:
            state["left"] -= 1
            raise RuntimeError("simulated failure while taking alerts in")
        return real(**kwargs)

    monkeypatch.setattr(intake, "ingest", ingest)

    def _fail(times):
        state["left"] = times

    return _fail


def test_a_failure_in_processing_answers_202_and_the_sweeper_takes_it_in(
    clock, prometheus, post_alerts, am_payload, am_alert, failing_ingest
):
    _, secret = prometheus
    failing_ingest(1)

    response = post_alerts("alertmanager", am_payload(am_alert()), secret=secret)

    assert response.status_code == 202
    assert response.json()["detail"] == "Stored; processing failed and will be retried."
    payload = AlertPayload.objects.get()
    assert response.json()["payload"] == payload.pk
    assert payload.status == AlertPayload.Status.RECEIVED
    assert "simulated failure" in payload.error
    assert payload.processed_at is None
    # The alerts' part was rolled back whole.
    assert not Alert.objects.exists() and not Incident.objects.exists()

    assert payloads_sweep() == 0  # too fresh: the request may still be running
    clock.shift(timedelta(minutes=1))
    assert payloads_sweep() == 1

    payload.refresh_from_db()
    assert payload.status == AlertPayload.Status.PROCESSED
    assert payload.error == ""
    assert payload.attempts == 2
    assert payload.processed_at == timezone.now()
    alert = Alert.objects.get()
    assert alert.last_payload == payload
    assert alert.incident.status == Status.TRIAGE
    assert TimelineEvent.objects.get(kind="alert").source == "system"
    assert payloads_sweep() == 0


def test_a_payload_that_keeps_failing_is_marked_failed_and_may_be_retried(
    clock, prometheus, post_alerts, am_payload, am_alert, failing_ingest
):
    _, secret = prometheus
    failing_ingest(100)
    assert post_alerts("alertmanager", am_payload(am_alert()), secret=secret).status_code == 202
    payload = AlertPayload.objects.get()

    for _ in range(4):
        clock.shift(timedelta(minutes=1))
        assert payloads_sweep() == 0

    payload.refresh_from_db()
    assert payload.status == AlertPayload.Status.FAILED
    assert payload.attempts == 5
    clock.shift(timedelta(minutes=1))
    payloads_sweep()
    assert AlertPayload.objects.get().attempts == 5  # the sweeper leaves it alone

    failing_ingest(0)
    assert payload_retry(payload) is True  # "retry" in the admin
    assert AlertPayload.objects.get().status == AlertPayload.Status.PROCESSED
    assert Alert.objects.count() == 1


def test_the_sweeper_leaves_processed_and_rejected_payloads_alone(
    clock, prometheus, post_alerts, am_payload, am_alert
):
    _, secret = prometheus
    post_alerts("alertmanager", am_payload(am_alert()), secret=secret)
    post_alerts("alertmanager", b"nope", secret=secret)
    clock.shift(timedelta(hours=1))

    assert payloads_sweep() == 0
    assert payload_retry(AlertPayload.objects.get(status="processed")) is False
    assert Alert.objects.get().times_received == 1


def test_a_retried_repeat_is_not_a_second_alert(
    clock, prometheus, post_alerts, am_payload, am_alert, failing_ingest
):
    _, secret = prometheus
    post_alerts("alertmanager", am_payload(am_alert()), secret=secret)
    failing_ingest(1)
    assert post_alerts("alertmanager", am_payload(am_alert()), secret=secret).status_code == 202
    clock.shift(timedelta(minutes=1))
    payloads_sweep()

    alert = Alert.objects.get()
    assert alert.times_received == 2
    assert Incident.objects.count() == 1


# --- pruning raw payloads ----------------------------------------------------------------


def test_old_payloads_are_forgotten_but_not_those_waiting(
    clock, prometheus, post_alerts, am_payload, am_alert, failing_ingest, settings
):
    _, secret = prometheus
    post_alerts("alertmanager", am_payload(am_alert("Old")), secret=secret)
    post_alerts("alertmanager", b"nope", secret=secret)
    failing_ingest(1)
    post_alerts("alertmanager", am_payload(am_alert("Waiting")), secret=secret)
    clock.shift(settings.ALERTS_PAYLOAD_RETENTION - timedelta(days=1))
    post_alerts("alertmanager", am_payload(am_alert("Recent")), secret=secret)

    assert payloads_prune() == 0
    clock.shift(timedelta(days=2))
    assert payloads_prune() == 2

    assert sorted(AlertPayload.objects.values_list("status", flat=True)) == [
        "processed",
        "received",
    ]
    # The alerts stay; only their raw body is gone.
    assert Alert.objects.get(labels__alertname="Old").last_payload is None


# --- alerts due for another look --------------------------------------------------------


@pytest.fixture
def scripts(make_source, default_rules):
    return make_source("scripts", "generic")


def test_a_waiting_alert_opens_its_incident_when_its_firing_time_is_up(clock, scripts, post_alerts):
    _, secret = scripts
    body = {"title": "Errors", "labels": {"service": "api"}, "metrics": {"error_rate": 0.3}}
    post_alerts("generic", body, secret=secret)
    alert = Alert.objects.get()
    assert alert.evaluate_at == timezone.now() + timedelta(minutes=5)

    clock.shift(timedelta(minutes=4))
    post_alerts("generic", body, secret=secret)  # a repeat opens nothing
    assert alerts_evaluate_due() == 0
    assert not Incident.objects.exists()

    clock.shift(timedelta(minutes=1))
    assert alerts_evaluate_due() == 1

    alert.refresh_from_db()
    incident = alert.incident
    assert incident.title == "High error rate on api"
    assert incident.severity.key == "SEV2"
    assert incident.status == Status.TRIAGE
    assert alert.evaluate_at is None
    assert alert.disposition == f"Opened {incident.reference} (rule “High error rate”)."
    assert alert.times_received == 2
    assert alerts_evaluate_due() == 0


def test_an_alert_firing_long_enough_already_opens_at_once(clock, scripts, post_alerts):
    _, secret = scripts
    started = (timezone.now() - timedelta(minutes=10)).isoformat()
    post_alerts(
        "generic",
        {
            "title": "Errors",
            "labels": {"service": "api"},
            "metrics": {"error_rate": 0.3},
            "starts_at": started,
        },
        secret=secret,
    )
    assert Alert.objects.get().incident.title == "High error rate on api"


def test_an_alert_resolved_while_waiting_never_opens(clock, scripts, post_alerts):
    _, secret = scripts
    body = {"title": "Errors", "metrics": {"error_rate": 0.3}}
    post_alerts("generic", body, secret=secret)
    clock.shift(timedelta(minutes=2))
    post_alerts("generic", {**body, "status": "resolved"}, secret=secret)

    clock.shift(timedelta(minutes=10))
    assert alerts_evaluate_due() == 0
    assert Alert.objects.get().evaluate_at is None
    assert not Incident.objects.exists()


def test_a_waiting_alert_whose_rule_was_disabled_goes_to_the_next_rule(clock, scripts, post_alerts):
    _, secret = scripts
    post_alerts("generic", {"title": "Errors", "metrics": {"error_rate": 0.3}}, secret=secret)
    rule_save(rule=DetectionRule.objects.get(name="High error rate"), enabled=False)

    clock.shift(timedelta(minutes=5))
    alerts_evaluate_due()

    alert = Alert.objects.get()
    assert alert.rule.name == "Everything else"
    assert alert.incident.severity.key == "SEV4"


def test_a_silenced_alert_opens_its_incident_when_the_silence_ends(
    clock, prometheus, post_alerts, am_payload, am_alert
):
    _, secret = prometheus
    silence_save(
        ends_at=timezone.now() + timedelta(hours=1),
        comment="Deploy",
        matchers=[{"key": "job", "operator": "equals", "value": "api"}],
    )
    post_alerts("alertmanager", am_payload(am_alert()), secret=secret)

    clock.shift(timedelta(minutes=59))
    assert alerts_evaluate_due() == 0
    clock.shift(timedelta(minutes=1))
    assert alerts_evaluate_due() == 1

    alert = Alert.objects.get()
    assert alert.incident is not None
    assert alert.silenced_by is None
    assert alert.disposition.startswith("Opened ")


def test_expiring_a_silence_lets_the_next_round_open_its_alerts(
    clock, prometheus, post_alerts, am_payload, am_alert
):
    _, secret = prometheus
    silence = silence_save(
        ends_at=timezone.now() + timedelta(days=1),
        comment="Deploy",
        matchers=[{"key": "job", "operator": "equals", "value": "api"}],
    )
    post_alerts("alertmanager", am_payload(am_alert()), secret=secret)
    clock.shift(timedelta(minutes=10))

    silence_expire(silence=silence)
    clock.shift(timedelta(minutes=1))
    assert alerts_evaluate_due() == 1
    assert Alert.objects.get().incident is not None


def test_judging_again_after_a_new_rule(clock, scripts, post_alerts, outage):
    _, secret = scripts
    DetectionRule.objects.all().delete()
    post_alerts("generic", {"title": "Orphan", "labels": {"team": "blue"}}, secret=secret)
    alert = Alert.objects.get()
    assert alert.disposition == "No rule matched."
    assert alerts_evaluate_due() == 0  # nothing makes it due by itself

    rule_save(
        name="Team blue", incident_type=outage, conditions=[{"key": "team", "operator": "exists"}]
    )
    assert alerts_judge_again([alert]) == 1

    alert.refresh_from_db()
    assert alert.rule.name == "Team blue"
    assert alert.incident is not None
    assert alerts_judge_again([alert]) == 0  # it has its incident now
