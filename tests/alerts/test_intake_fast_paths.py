"""The cheap writes of the intake (bench/alerts_intake.py): a resend that says what is
stored already, and new alerts that all come to the same outcome, store exactly what the
general path stores."""

import pytest

from alerts.models import Alert, AlertPayload


@pytest.fixture
def send(prometheus, post_alerts, am_payload):
    _, secret = prometheus

    def _send(*alerts):
        response = post_alerts("alertmanager", am_payload(*alerts), secret=secret)
        assert response.status_code == 200, response.content
        return response.json()

    return _send


def on(instance, am_alert, **options):
    return am_alert(labels={"instance": instance}, **options)


@pytest.mark.django_db
def test_an_unchanged_resend_counts_and_stamps_each_alert(send, am_alert):
    send(on("a", am_alert), on("b", am_alert))
    before = {alert.fingerprint: alert for alert in Alert.objects.all()}

    answer = send(on("a", am_alert), on("b", am_alert))

    assert answer["repeated"] == 2 and answer["new"] == 0
    latest = AlertPayload.objects.order_by("-pk").first()
    for alert in Alert.objects.all():
        assert alert.times_received == 2
        assert alert.last_seen_at > before[alert.fingerprint].last_seen_at
        assert alert.last_payload == latest
        assert alert.annotations == before[alert.fingerprint].annotations


@pytest.mark.django_db
def test_a_resend_mixing_changed_and_unchanged_alerts_stores_each(send, am_alert):
    send(on("a", am_alert, annotations={"value": "1"}), on("b", am_alert))
    send(on("a", am_alert, annotations={"value": "1"}), on("b", am_alert))

    send(on("a", am_alert, annotations={"value": "7"}), on("b", am_alert))

    a, b = (Alert.objects.get(labels__instance=name) for name in ("a", "b"))
    assert (a.times_received, b.times_received) == (3, 3)
    assert a.metrics == {"value": 7.0} and a.annotations["value"] == "7"
    assert b.metrics == {} and "value" not in b.annotations
    assert a.last_payload == b.last_payload == AlertPayload.objects.order_by("-pk").first()


@pytest.mark.django_db
def test_new_alerts_joining_one_incident_each_record_it(send, am_alert):
    send(on("a", am_alert))
    incident = Alert.objects.get().incident

    send(on("b", am_alert), on("c", am_alert))

    joined = Alert.objects.filter(labels__instance__in=["b", "c"])
    assert {(alert.incident, alert.group) for alert in joined} == {(incident, incident.alert_group)}
    assert {alert.rule.name for alert in joined} == {"Everything else"}
    assert {alert.disposition for alert in joined} == {
        f"Joined {incident.reference} (rule “Everything else”)."
    }


@pytest.mark.django_db
def test_new_alerts_with_different_outcomes_each_keep_their_own(send, am_alert):
    answer = send(on("a", am_alert), am_alert(alertname="Watchdog"))

    firing = Alert.objects.get(labels__alertname="HighErrorRate")
    watchdog = Alert.objects.get(labels__alertname="Watchdog")
    assert firing.incident is not None
    assert firing.incident.reference in answer["incidents_opened"]
    assert watchdog.incident is None and watchdog.group is None
    assert watchdog.disposition == "Ignored as noise by rule “Watchdog (always firing)”."
