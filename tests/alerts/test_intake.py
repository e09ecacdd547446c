"""The intake endpoints end to end: who may post (bearer, HMAC, disabled sources), what
is refused and how (400/413, kept as rejected), what is kept raw, dedup by fingerprint,
grouping into one incident, resolution, silences, the incident's lifecycle closing its
group, and confidential alerts."""

import hashlib
import hmac
import io
import json
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from alerts import queries
from alerts.models import Alert, AlertGroup, AlertPayload, DetectionRule
from alerts.services import (
    rule_save,
    silence_save,
    source_rotate_secret,
    source_update,
)
from incidents.models import Incident, IncidentType, Service, Source, Status, TimelineEvent
from incidents.services import incident_accept, incident_decline, incident_transition


@pytest.fixture
def send(prometheus, post_alerts, am_payload):
    """Post these Alertmanager alerts as the prometheus source; return the JSON answer."""
    _, secret = prometheus

    def _send(*alerts, expect=200):
        response = post_alerts("alertmanager", am_payload(*alerts), secret=secret)
        assert response.status_code == expect, response.content
        return response.json()

    return _send


def alert_events(incident):
    return list(
        TimelineEvent.objects.filter(incident=incident, kind="alert")
        .order_by("pk")
        .values_list("summary", flat=True)
    )


def errors_of(response) -> str:
    return " ".join(error["detail"] for error in response.json()["errors"])


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    message = f"{timestamp}:".encode() + body if timestamp else body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# --- who may post ------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_secret_is_401_and_nothing_is_stored(prometheus, post_alerts, am_payload, am_alert):
    response = post_alerts("alertmanager", am_payload(am_alert()))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in errors_of(response)
    assert not AlertPayload.objects.exists() and not Alert.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    [
        "nope",
        "{pk}.0000000000000000000000000000000000000000000000000000000000000000",
        "{pk}.",
        "999999.{hex}",
        "{pk}{hex}",
        "-1.{hex}",
        "99999999999999999999999.{hex}",
    ],
)
def test_a_wrong_secret_is_401(prometheus, post_alerts, am_payload, am_alert, token):
    source, secret = prometheus
    token = token.format(pk=source.pk, hex=secret.partition(".")[2])

    response = post_alerts("alertmanager", am_payload(am_alert()), secret=token)

    assert response.status_code == 401
    assert "Unknown alert source secret" in errors_of(response)
    assert not AlertPayload.objects.exists()


@pytest.mark.django_db
def test_basic_auth_is_not_a_secret(prometheus, post_alerts, am_payload, am_alert):
    _, secret = prometheus
    response = post_alerts(
        "alertmanager", am_payload(am_alert()), HTTP_AUTHORIZATION=f"Basic {secret}"
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_a_rotated_secret_stops_working_at_once(prometheus, post_alerts, am_payload, am_alert):
    source, old = prometheus
    new = source_rotate_secret(source=source)

    assert post_alerts("alertmanager", am_payload(am_alert()), secret=old).status_code == 401
    assert post_alerts("alertmanager", am_payload(am_alert()), secret=new).status_code == 200


@pytest.fixture
def grafana(make_source, default_rules):
    return make_source("grafana", "grafana")


@pytest.fixture
def grafana_body():
    return json.dumps(
        {
            "receiver": "Sitrep",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "High memory usage", "zone": "us-1"},
                    "annotations": {},
                    "values": {"B": 91.2},
                    "fingerprint": "c6eadffa33fcdf37",
                }
            ],
        }
    ).encode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stamp",
    [
        lambda: str(int(time.time())),
        lambda: str(int(time.time() * 1000)),  # milliseconds
        lambda: str(time.time() - 60),
    ],
)
def test_grafana_signature_over_timestamp_and_body_is_accepted(
    grafana, post_alerts, grafana_body, stamp
):
    _, secret = grafana
    stamp = stamp()
    response = post_alerts(
        "grafana",
        grafana_body,
        query="?source=grafana",
        HTTP_X_GRAFANA_ALERTING_SIGNATURE=sign(secret, grafana_body, stamp),
        HTTP_X_GRAFANA_ALERTING_TIMESTAMP=stamp,
    )

    assert response.status_code == 200, response.content
    assert Alert.objects.get().metrics == {"B": 91.2}


@pytest.mark.django_db
def test_a_signature_over_the_body_alone_is_accepted_without_a_timestamp(
    grafana, post_alerts, grafana_body
):
    _, secret = grafana
    response = post_alerts(
        "grafana",
        grafana_body,
        query="?source=grafana",
        HTTP_X_GRAFANA_ALERTING_SIGNATURE="sha256=" + sign(secret, grafana_body).upper(),
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case",
    ["other body", "other timestamp", "body only but stamped", "other secret", "garbage"],
)
def test_a_bad_signature_is_401(grafana, make_source, post_alerts, grafana_body, case):
    _, secret = grafana
    stamp = str(int(time.time()))
    signature = {
        "other body": lambda: sign(secret, grafana_body + b" ", stamp),
        "other timestamp": lambda: sign(secret, grafana_body, str(int(stamp) - 1)),
        "body only but stamped": lambda: sign(secret, grafana_body),
        "other secret": lambda: sign(make_source("other", "grafana")[1], grafana_body, stamp),
        "garbage": lambda: "not-hex",
    }[case]()

    response = post_alerts(
        "grafana",
        grafana_body,
        query="?source=grafana",
        HTTP_X_GRAFANA_ALERTING_SIGNATURE=signature,
        HTTP_X_GRAFANA_ALERTING_TIMESTAMP=stamp,
    )

    assert response.status_code == 401
    assert "The signature does not match the body" in errors_of(response)
    assert not AlertPayload.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stamp, message",
    [
        (lambda: str(int(time.time()) - 301), "too old or in the future"),
        (lambda: str(int(time.time()) + 3600), "too old or in the future"),
        (lambda: str(int((time.time() - 86400) * 1000)), "too old or in the future"),
        (lambda: "yesterday", "not a Unix time"),
    ],
)
def test_a_stale_or_bad_timestamp_is_401_even_when_correctly_signed(
    grafana, post_alerts, grafana_body, stamp, message
):
    _, secret = grafana
    stamp = stamp()
    response = post_alerts(
        "grafana",
        grafana_body,
        query="?source=grafana",
        HTTP_X_GRAFANA_ALERTING_SIGNATURE=sign(secret, grafana_body, stamp),
        HTTP_X_GRAFANA_ALERTING_TIMESTAMP=stamp,
    )

    assert response.status_code == 401
    assert message in errors_of(response)


@pytest.mark.django_db
def test_signing_needs_the_source_named_and_the_header(grafana, post_alerts, grafana_body):
    _, secret = grafana
    signature = sign(secret, grafana_body)

    unnamed = post_alerts("grafana", grafana_body, HTTP_X_GRAFANA_ALERTING_SIGNATURE=signature)
    unknown = post_alerts(
        "grafana", grafana_body, query="?source=nope", HTTP_X_GRAFANA_ALERTING_SIGNATURE=signature
    )
    unsigned = post_alerts("grafana", grafana_body, query="?source=grafana")

    assert unnamed.status_code == unknown.status_code == unsigned.status_code == 401
    assert "?source=<name>" in errors_of(unnamed)
    assert "No X-Grafana-Alerting-Signature header" in errors_of(unsigned)


@pytest.mark.django_db
def test_the_signature_header_names_are_the_sources(grafana, post_alerts, grafana_body):
    source, secret = grafana
    source_update(source=source, signature_header="X-Hub-Signature-256", timestamp_header="")
    stamp = str(int(time.time()))

    ours = post_alerts(
        "grafana",
        grafana_body,
        query="?source=grafana",
        HTTP_X_HUB_SIGNATURE_256="sha256=" + sign(secret, grafana_body),
    )
    # With no timestamp header configured, a timestamp sent is not part of the message.
    grafanas = post_alerts(
        "grafana",
        grafana_body,
        query="?source=grafana",
        HTTP_X_GRAFANA_ALERTING_SIGNATURE=sign(secret, grafana_body, stamp),
        HTTP_X_GRAFANA_ALERTING_TIMESTAMP=stamp,
    )

    assert ours.status_code == 200, ours.content
    assert grafanas.status_code == 401


@pytest.mark.django_db
def test_a_disabled_source_is_403_by_secret_and_by_signature(grafana, post_alerts, grafana_body):
    source, secret = grafana
    source_update(source=source, enabled=False)

    by_secret = post_alerts("grafana", grafana_body, secret=secret)
    by_signature = post_alerts(
        "grafana",
        grafana_body,
        query="?source=grafana",
        HTTP_X_GRAFANA_ALERTING_SIGNATURE=sign(secret, grafana_body),
    )

    assert by_secret.status_code == by_signature.status_code == 403
    assert "The alert source grafana is disabled" in errors_of(by_secret)
    assert not AlertPayload.objects.exists() and not Alert.objects.exists()


@pytest.mark.django_db
def test_a_source_posting_to_another_kinds_endpoint_is_told_where_to_post(
    prometheus, post_alerts, am_payload, am_alert
):
    _, secret = prometheus
    response = post_alerts("grafana", am_payload(am_alert()), secret=secret)

    assert response.status_code == 400
    assert "prometheus sends alertmanager payloads: post them to /api/v1/alerts/alertmanager/" in (
        errors_of(response)
    )
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_only_post_is_allowed(prometheus):
    from rest_framework.test import APIClient

    _, secret = prometheus
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/alerts/alertmanager/").status_code == 405


@pytest.mark.django_db
def test_create_alert_source_prints_the_secret_alone_on_its_last_line(
    default_rules, post_alerts, am_payload, am_alert
):
    out = io.StringIO()
    call_command(
        "create_alert_source", "prod-am", "--kind", "alertmanager", "--heartbeat-minutes", "5",
        stdout=out,
    )  # fmt: skip

    lines = out.getvalue().splitlines()
    secret = lines[-1]
    assert "Created alert source prod-am" in out.getvalue()
    assert secret.strip() == secret and " " not in secret
    assert post_alerts("alertmanager", am_payload(am_alert()), secret=secret).status_code == 200
    assert Alert.objects.get().source.heartbeat_minutes == 5
    # The secret is not stored; only its hint is.
    source = Alert.objects.get().source
    assert secret not in json.dumps(list(type(source).objects.values()), default=str)
    assert source.secret_hint == "…" + secret[-4:]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["prod-am", "--kind", "alertmanager"], "exists already"),
        (["Prod AM", "--kind", "alertmanager"], "lowercase letters, digits and dashes"),
        (["x", "--kind", "generic", "--heartbeat-minutes", "0"], "Give whole minutes"),
    ],
)
def test_create_alert_source_refuses_clearly(make_source, args, message):
    make_source("prod-am", "alertmanager")
    with pytest.raises(CommandError, match=message):
        call_command("create_alert_source", *args, stdout=io.StringIO())


# --- what is refused -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, message",
    [
        (b"nope", "The body is not JSON"),
        (b"", "The body is not JSON"),
        (b'{"alerts": [', "The body is not JSON"),
        (b"\xc3\x28\xa0", "The body is not UTF-8 text"),
        # UTF-16 JSON would be taken by json.loads and kept garbled (not as it came).
        ('{"alerts": []}'.encode("utf-16"), "The body is not UTF-8 text"),
        (b'{"alerts": [{"status": "firing", "labels": {"a": "\xed\xa0\x80"}}]}', "not UTF-8"),
        (b'{"alerts": [{"status": "firing", "labels": "\x00"}]}', "The body is not JSON"),
        (b"[]", "The payload must be a JSON object"),
        (b'"alerts"', "The payload must be a JSON object"),
        (b'{"alerts": {}}', "alerts must be a list of alerts"),
        (b'{"alerts": [{"status": "on"}]}', 'alerts[0].status must be "firing" or "resolved"'),
        (b'{"alerts": [{"status": "firing", "labels": [1]}]}', "alerts[0].labels must be an"),
        (b'{"alerts": [{"status": "firing", "startsAt": 5}]}', "alerts[0].startsAt must be an"),
        (b'{"version": 4, "alerts": []}', "Unsupported webhook version 4"),
    ],
)
def test_a_malformed_payload_is_400_naming_why_and_kept_as_rejected(
    prometheus, post_alerts, body, message
):
    _, secret = prometheus
    response = post_alerts("alertmanager", body, secret=secret)

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "payload"
    assert message in errors_of(response)
    payload = AlertPayload.objects.get()
    assert payload.status == AlertPayload.Status.REJECTED
    assert message in payload.error
    assert payload.body == body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    assert not Alert.objects.exists() and not Incident.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, message",
    [
        # Python refuses to read an integer of over 4,300 digits (a ValueError, was a 500).
        (b'{"title": "T", "metrics": {"m": ' + b"1" * 5000 + b"}}", "a number too long"),
        # An integer past the largest float (an OverflowError, was a 500).
        (b'{"title": "T", "metrics": {"m": 1' + b"0" * 400 + b"}}", "must be a finite number"),
        (b'{"title": "T", "metrics": {"m": -Infinity}}', "must be a finite number"),
        # Past year 9999 once in UTC (SQLite could not store it: the payload failed forever).
        (
            b'{"title": "T", "status": "resolved", "ends_at": "9999-12-31T23:59:59-05:00"}',
            "ends_at is out of range",
        ),
    ],
)
def test_numbers_and_times_out_of_range_are_400_not_a_crash(
    make_source, default_rules, post_alerts, body, message
):
    _, secret = make_source("scripts", "generic")
    post_alerts("generic", {"title": "T"}, secret=secret)

    response = post_alerts("generic", body, secret=secret)

    assert response.status_code == 400, response.content
    assert message in errors_of(response)
    assert AlertPayload.objects.latest("pk").status == AlertPayload.Status.REJECTED


@pytest.mark.django_db
def test_a_content_type_with_nul_is_stored_cleaned(prometheus, post_alerts, am_payload, am_alert):
    # PostgreSQL text refuses NUL (was a 500 there).
    _, secret = prometheus
    response = post_alerts(
        "alertmanager", am_payload(am_alert()), secret=secret, content_type="application/json\x00"
    )
    assert response.status_code == 200, response.content
    assert AlertPayload.objects.get().content_type == "application/json"
    rejected = post_alerts("alertmanager", b"nope", secret=secret, content_type="text/\x00plain")
    assert rejected.status_code == 400
    assert AlertPayload.objects.latest("pk").content_type == "text/plain"


@pytest.mark.django_db
def test_a_utf8_byte_order_mark_is_taken_and_kept(prometheus, post_alerts, am_payload, am_alert):
    _, secret = prometheus
    body = b"\xef\xbb\xbf" + json.dumps(am_payload(am_alert())).encode()

    assert post_alerts("alertmanager", body, secret=secret).status_code == 200
    assert AlertPayload.objects.get().body.encode() == body


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413_before_it_is_read(
    prometheus, post_alerts, monkeypatch, am_payload, am_alert
):
    from alerts.services import intake

    def must_not_parse(*args, **kwargs):
        raise AssertionError("a body over the limit was parsed")

    monkeypatch.setattr(intake, "parse_body", must_not_parse)
    _, secret = prometheus
    body = json.dumps(am_payload(am_alert(annotations={"x": "y" * 5_000_000})))
    assert len(body) > 5_000_000

    response = post_alerts("alertmanager", body, secret=secret)

    assert response.status_code == 413
    assert "larger than the limit of 1,048,576 bytes" in errors_of(response)
    assert not AlertPayload.objects.exists()


@pytest.mark.django_db
@override_settings(ALERTS_MAX_BODY_BYTES=2000)
def test_the_body_limit_is_the_setting(prometheus, post_alerts):
    _, secret = prometheus

    def body(size):
        head = b'{"alerts": [], "receiver": "'
        return head + b"x" * (size - len(head) - 2) + b'"}'

    assert post_alerts("alertmanager", body(2000), secret=secret).status_code == 200
    assert post_alerts("alertmanager", body(2001), secret=secret).status_code == 413


@pytest.mark.django_db
def test_ten_thousand_alerts_in_one_request_are_refused_whole(prometheus, post_alerts, am_payload):
    _, secret = prometheus
    alerts = [
        {"status": "firing", "labels": {"alertname": "Flood", "i": str(i)}} for i in range(10_000)
    ]
    body = json.dumps(am_payload(*alerts), separators=(",", ":"))
    assert len(body) < 1024 * 1024  # under the body limit: refused for its count

    response = post_alerts("alertmanager", body, secret=secret)

    assert response.status_code == 413
    assert errors_of(response) == (
        "The payload holds 10,000 alerts; at most 1,000 are taken in one request: "
        "send them in parts."
    )
    # Nothing half-stored: no alert, no incident; the body is kept, marked rejected.
    assert not Alert.objects.exists()
    assert not Incident.objects.exists()
    payload = AlertPayload.objects.get()
    assert payload.status == AlertPayload.Status.REJECTED
    assert payload.alert_count == 0
    assert payload.body == body
    assert "10,000 alerts" in payload.error


@pytest.mark.django_db
@override_settings(ALERTS_MAX_PER_PAYLOAD=3)
def test_the_alert_count_limit_is_the_setting(prometheus, post_alerts, am_payload, am_alert):
    _, secret = prometheus
    alerts = [am_alert(labels={"i": str(i)}) for i in range(4)]

    assert post_alerts("alertmanager", am_payload(*alerts[:3]), secret=secret).status_code == 200
    assert post_alerts("alertmanager", am_payload(*alerts), secret=secret).status_code == 413
    assert Alert.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b'{"alerts": [{"status": "firing", "labels": {"a": '
        + b'{"b": ' * 40
        + b"1"
        + b"}" * 41
        + b"}]}",
        b"[" * 100_000,
        b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_deep_nesting_is_400_not_a_crash(prometheus, post_alerts, body):
    _, secret = prometheus
    response = post_alerts("alertmanager", body, secret=secret)

    assert response.status_code == 400
    assert "nests deeper than 32 levels" in errors_of(response)
    assert AlertPayload.objects.get().status == AlertPayload.Status.REJECTED


@pytest.mark.django_db
def test_nul_and_unprintable_characters_are_taken_out_not_a_500(
    prometheus, post_alerts, am_payload
):
    # PostgreSQL's JSON refuses \u0000 and a lone surrogate cannot be encoded at all:
    # both must be cleaned before anything is written.
    _, secret = prometheus
    body = json.dumps(
        am_payload(
            {
                "status": "firing",
                "labels": {
                    "alertname": "Disk\u0000Full",
                    "inst\u0000ance": "db-1\u001b[31m",
                    "zone": "\ud800eu\x7f",
                },
                "annotations": {"summary": "Disk\u0000 full\u0007", "value": "9\u00000"},
                "fingerprint": "fp\u0000-1",
                "generatorURL": "http://x/\u0000",
            }
        )
    )
    assert "\\u0000" in body

    response = post_alerts("alertmanager", body, secret=secret)

    assert response.status_code == 200, response.content
    alert = Alert.objects.get()
    assert alert.labels == {"alertname": "DiskFull", "instance": "db-1[31m", "zone": "eu"}
    assert alert.annotations == {"summary": "Disk full", "value": "90"}
    assert alert.metrics == {"value": 90.0}
    assert alert.fingerprint == "fp-1"
    assert alert.title == "Disk full"
    assert alert.incident is not None
    assert AlertPayload.objects.get().body == body  # the raw body, escapes and all


@pytest.mark.django_db
def test_nul_characters_in_a_generic_title_and_metrics_names(
    make_source, default_rules, post_alerts
):
    _, secret = make_source("scripts", "generic")
    response = post_alerts(
        "generic",
        '{"title": "Back\\u0000up \\u001b failed", "metrics": {"er\\u0000ror_rate": 0.5}}',
        secret=secret,
    )

    assert response.status_code == 200, response.content
    alert = Alert.objects.get()
    assert alert.title == "Backup  failed"
    assert alert.metrics == {"error_rate": 0.5}


# --- raw payloads ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_accepted_payload_is_kept_raw_with_its_receive_time(
    prometheus, post_alerts, am_payload, am_alert
):
    source, secret = prometheus
    body = json.dumps(am_payload(am_alert(), am_alert(labels={"instance": "api-2"})), indent=2)
    before = timezone.now()

    response = post_alerts("alertmanager", body, secret=secret, content_type="application/json")

    payload = AlertPayload.objects.get()
    assert response.json()["payload"] == payload.pk
    assert response.json()["alerts"] == 2
    assert payload.source == source
    assert payload.body == body
    assert payload.content_type == "application/json"
    assert payload.status == AlertPayload.Status.PROCESSED
    assert payload.alert_count == 2
    assert payload.attempts == 1
    assert before <= payload.received_at <= timezone.now()
    assert payload.processed_at == payload.received_at
    assert {alert.last_payload for alert in Alert.objects.all()} == {payload}


# --- dedup -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_repeat_updates_the_same_alert(send, am_alert):
    first = send(am_alert(annotations={"value": "0.2"}))
    second = send(am_alert(annotations={"value": "0.3"}))
    third = send(am_alert(annotations={"value": "0.4"}))

    assert first["new"] == 1 and first["incidents_opened"]
    assert second["new"] == third["new"] == 0
    assert second["repeated"] == third["repeated"] == 1
    assert second["incidents_opened"] == third["incidents_opened"] == []
    alert = Alert.objects.get()
    assert alert.times_received == 3
    assert alert.metrics == {"value": 0.4}
    assert alert.last_seen_at > alert.first_seen_at
    assert alert.last_payload == AlertPayload.objects.order_by("-pk").first()
    assert Incident.objects.count() == 1
    assert alert_events(alert.incident) == ["Alert fired: HighErrorRate on api-1:9100"]


@pytest.mark.django_db
def test_a_repeat_costs_a_few_queries(send, am_alert, django_assert_max_num_queries):
    send(am_alert(), am_alert(labels={"instance": "api-2"}), am_alert(labels={"instance": "api-3"}))
    with django_assert_max_num_queries(8):
        answer = send(
            am_alert(),
            am_alert(labels={"instance": "api-2"}),
            am_alert(labels={"instance": "api-3"}),
        )
    assert answer["repeated"] == 3


@pytest.mark.django_db
def test_the_fingerprint_comes_from_the_sorted_labels_when_not_given(send, am_alert):
    one = am_alert(labels={"zone": "a"})
    two = am_alert()
    two["labels"] = dict(reversed(list(one["labels"].items())))
    send(one)
    answer = send(two)

    assert answer["repeated"] == 1
    assert Alert.objects.count() == 1


@pytest.mark.django_db
def test_a_given_fingerprint_wins_over_the_labels(send, am_alert):
    send(am_alert(fingerprint="abc", labels={"instance": "a"}))
    answer = send(am_alert(fingerprint="abc", labels={"instance": "b"}))
    assert answer["repeated"] == 1 and Alert.objects.count() == 1


@pytest.mark.django_db
def test_the_same_alert_twice_in_one_payload_is_one_alert_and_the_last_says(send, am_alert):
    assert send(am_alert(), am_alert())["new"] == 1
    assert Alert.objects.get().times_received == 1

    answer = send(am_alert(), am_alert(status="resolved"))
    assert answer["resolved"] == 1
    assert Alert.objects.get().status == Alert.Status.RESOLVED


@pytest.mark.django_db
def test_the_same_fingerprint_from_two_sources_is_two_alerts(
    prometheus, make_source, post_alerts, am_payload, am_alert
):
    _, one = prometheus
    _, two = make_source("prometheus-eu", "alertmanager")
    post_alerts("alertmanager", am_payload(am_alert(fingerprint="same")), secret=one)
    post_alerts("alertmanager", am_payload(am_alert(fingerprint="same")), secret=two)

    assert Alert.objects.filter(fingerprint="same").count() == 2
    # Same alertname, same rule: one problem, one incident.
    assert Incident.objects.count() == 1


# --- grouping --------------------------------------------------------------------------


@pytest.mark.django_db
def test_alerts_with_the_same_group_key_join_one_incident(send, am_alert):
    first = send(am_alert(labels={"instance": "api-1"}))
    second = send(am_alert(labels={"instance": "api-2"}))

    (reference,) = first["incidents_opened"]
    assert second["incidents_opened"] == []
    assert second["incidents_joined"] == [reference]
    incident = Incident.objects.get()
    assert incident.alerts.count() == 2
    assert AlertGroup.objects.get().incident == incident
    assert Alert.objects.get(labels__instance="api-2").disposition == (
        f"Joined {reference} (rule “Everything else”)."
    )
    assert alert_events(incident) == [
        "Alert fired: HighErrorRate on api-1",
        "Alert fired: HighErrorRate on api-2",
    ]


@pytest.mark.django_db
def test_alerts_of_different_keys_open_different_incidents(send, am_alert):
    answer = send(
        am_alert("HighErrorRate"), am_alert("DiskFull"), am_alert("DiskFull", labels={"i": "2"})
    )

    assert answer["new"] == 3
    assert len(answer["incidents_opened"]) == 2
    assert Incident.objects.count() == 2
    assert AlertGroup.objects.count() == 2
    disk = Alert.objects.filter(labels__alertname="DiskFull")
    assert disk.values("incident").distinct().count() == 1


@pytest.mark.django_db
def test_a_rules_group_by_decides_what_joins(send, am_alert, outage):
    rule_save(
        name="Per service",
        priority=1,
        incident_type=outage,
        group_by="{service}",
        title_template="Trouble on {service}",
        conditions=[{"key": "service", "operator": "exists"}],
    )
    send(am_alert("HighErrorRate", labels={"service": "api"}))
    send(am_alert("HighLatency", labels={"service": "api"}))
    send(am_alert("HighErrorRate", labels={"service": "billing"}))

    assert sorted(Incident.objects.values_list("title", flat=True)) == [
        "Trouble on api",
        "Trouble on billing",
    ]
    assert Incident.objects.get(title="Trouble on api").alerts.count() == 2


@pytest.mark.django_db
def test_an_incident_gets_the_services_and_summary_of_its_first_alert(send, am_alert, api_service):
    send(am_alert(labels={"service": "api"}, annotations={"description": "5xx at 23 %"}))

    incident = Incident.objects.get()
    assert list(incident.services.all()) == [api_service]
    assert incident.summary == "5xx at 23 %"
    assert incident.detection_source == "monitoring_alert"


@pytest.mark.django_db
def test_an_old_start_is_kept_and_a_future_one_is_now(send, am_alert):
    started = timezone.now() - timedelta(hours=3)
    send(
        am_alert("Old", starts_at=started),
        am_alert("Future", starts_at=timezone.now() + timedelta(hours=1)),
    )

    old = Alert.objects.get(labels__alertname="Old")
    future = Alert.objects.get(labels__alertname="Future")
    assert old.starts_at == started
    assert old.incident.started_at == started
    assert future.starts_at <= timezone.now()


@pytest.mark.django_db
def test_a_start_older_than_an_incident_may_be_backdated_still_opens_one(send, am_alert):
    send(am_alert(starts_at=timezone.now() - timedelta(days=800)))
    incident = Incident.objects.get()
    assert incident.started_at > timezone.now() - timedelta(days=366)


# --- resolution --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_resolution_closes_the_alert_and_the_timeline_says_all_resolved(send, am_alert):
    send(am_alert())
    ended = timezone.now() - timedelta(seconds=30)
    answer = send(am_alert(status="resolved", ends_at=ended))

    assert answer["resolved"] == 1
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.ends_at == ended
    assert alert.resolved_at is not None
    assert alert.times_received == 2
    assert AlertGroup.objects.get().all_resolved_at is not None
    assert alert_events(alert.incident) == [
        "Alert fired: HighErrorRate on api-1:9100",
        "Alert resolved: HighErrorRate on api-1:9100",
        "The alert resolved",
    ]
    assert alert.incident.status == Status.TRIAGE  # the default rule does not move it


@pytest.mark.django_db
def test_a_resolution_for_an_alert_not_firing_here_changes_nothing(send, am_alert):
    answer = send(am_alert(status="resolved"))

    assert answer["resolved"] == 0 and answer["resolved_unknown"] == 1
    assert not Alert.objects.exists() and not Incident.objects.exists()
    assert AlertPayload.objects.get().status == AlertPayload.Status.PROCESSED


@pytest.mark.django_db
def test_all_resolved_only_when_the_last_alert_of_the_group_resolves(send, am_alert):
    send(am_alert(labels={"instance": "a"}), am_alert(labels={"instance": "b"}))
    send(am_alert(labels={"instance": "a"}, status="resolved"))

    incident = Incident.objects.get()
    assert AlertGroup.objects.get().all_resolved_at is None
    assert "All 2 alerts resolved" not in alert_events(incident)

    send(am_alert(labels={"instance": "b"}, status="resolved"))
    assert AlertGroup.objects.get().all_resolved_at is not None
    assert alert_events(incident)[-1] == "All 2 alerts resolved"


@pytest.mark.django_db
def test_firing_again_after_resolving_is_a_new_alert_in_the_same_incident(send, am_alert):
    send(am_alert())
    send(am_alert(status="resolved"))
    answer = send(am_alert())

    assert answer["new"] == 1 and answer["incidents_opened"] == []
    old, new = Alert.objects.order_by("pk")
    assert old.status == Alert.Status.RESOLVED and new.status == Alert.Status.FIRING
    assert old.incident == new.incident
    assert AlertGroup.objects.get().all_resolved_at is None  # firing again
    assert alert_events(new.incident)[-1] == "Alert fired again: HighErrorRate on api-1:9100"


@pytest.fixture
def monitoring_rule(outage):
    return rule_save(
        name="Moves to monitoring",
        priority=1,
        incident_type=outage,
        monitor_when_resolved=True,
        conditions=[{"key": "alertname", "operator": "equals", "value": "BackendDown"}],
    )


@pytest.mark.django_db
def test_a_rule_may_move_the_incident_to_monitoring_when_all_resolved(
    send, am_alert, monitoring_rule, commander
):
    send(am_alert("BackendDown"))
    incident = Incident.objects.get()
    incident_accept(incident=incident, actor=commander, source=Source.ADMIN)
    incident_transition(
        incident=incident, to_status=Status.INVESTIGATING, actor=commander, source=Source.ADMIN
    )

    send(am_alert("BackendDown", status="resolved"))

    incident.refresh_from_db()
    assert incident.status == Status.MONITORING
    assert incident.mitigated_at is not None
    assert incident.timeline.filter(summary__contains="every alert has resolved").exists()


@pytest.mark.django_db
def test_monitor_when_resolved_leaves_a_triage_candidate_in_triage(send, am_alert, monitoring_rule):
    send(am_alert("BackendDown"))
    send(am_alert("BackendDown", status="resolved"))

    incident = Incident.objects.get()
    assert incident.status == Status.TRIAGE
    assert alert_events(incident)[-1] == "The alert resolved"


# --- the incident's lifecycle and its group ----------------------------------------------


@pytest.mark.django_db
def test_a_resolved_incident_closes_its_group_and_the_alert_again_opens_a_new_one(
    send, am_alert, commander
):
    first = send(am_alert())["incidents_opened"][0]
    incident = Incident.objects.get(reference=first)
    incident_accept(incident=incident, actor=commander, source=Source.ADMIN)
    incident_transition(
        incident=incident, to_status=Status.RESOLVED, actor=commander, source=Source.ADMIN
    )
    assert AlertGroup.objects.get(incident=incident).closed_at is not None

    send(am_alert(status="resolved"))
    answer = send(am_alert())

    assert len(answer["incidents_opened"]) == 1 and answer["incidents_opened"][0] != first
    assert Incident.objects.count() == 2
    assert AlertGroup.objects.filter(closed_at__isnull=True).count() == 1
    new = Alert.objects.get(status=Alert.Status.FIRING)
    assert new.incident.reference == answer["incidents_opened"][0]
    # A new incident's story starts with "fired", not "fired again".
    assert alert_events(new.incident) == ["Alert fired: HighErrorRate on api-1:9100"]
    # The old incident hears that its alert resolved.
    assert alert_events(incident)[-1] == "The alert resolved"


@pytest.mark.django_db
def test_an_alert_still_firing_after_its_incident_resolved_opens_nothing_new(
    send, am_alert, commander
):
    send(am_alert())
    incident = Incident.objects.get()
    incident_accept(incident=incident, actor=commander, source=Source.ADMIN)
    incident_transition(
        incident=incident, to_status=Status.RESOLVED, actor=commander, source=Source.ADMIN
    )

    answer = send(am_alert())  # monitoring resends it

    assert answer["repeated"] == 1 and answer["incidents_opened"] == []
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_a_new_alert_of_a_closed_group_opens_a_new_incident(send, am_alert, commander):
    send(am_alert(labels={"instance": "a"}))
    incident = Incident.objects.get()
    incident_decline(incident=incident, actor=commander, reason="test noise", source=Source.ADMIN)

    answer = send(am_alert(labels={"instance": "b"}))

    assert len(answer["incidents_opened"]) == 1
    assert Incident.objects.count() == 2
    assert Alert.objects.get(labels__instance="b").incident.status == Status.TRIAGE


@pytest.mark.django_db
def test_a_reopened_incident_takes_its_group_back(send, am_alert, commander):
    send(am_alert(labels={"instance": "a"}))
    incident = Incident.objects.get()
    incident_accept(incident=incident, actor=commander, source=Source.ADMIN)
    for status in (Status.RESOLVED, Status.INVESTIGATING):
        incident_transition(
            incident=incident, to_status=status, actor=commander, source=Source.ADMIN
        )

    answer = send(am_alert(labels={"instance": "b"}))

    assert answer["incidents_opened"] == [] and answer["incidents_joined"] == [incident.reference]
    assert AlertGroup.objects.get().closed_at is None


@pytest.mark.django_db
def test_a_reopened_incident_leaves_the_key_to_a_newer_incident(send, am_alert, commander):
    send(am_alert(labels={"instance": "a"}))
    old = Incident.objects.get()
    incident_accept(incident=old, actor=commander, source=Source.ADMIN)
    incident_transition(
        incident=old, to_status=Status.RESOLVED, actor=commander, source=Source.ADMIN
    )
    newer = send(am_alert(labels={"instance": "b"}))["incidents_opened"][0]

    incident_transition(
        incident=old, to_status=Status.INVESTIGATING, actor=commander, source=Source.ADMIN
    )

    assert AlertGroup.objects.get(incident=old).closed_at is not None
    assert AlertGroup.objects.get(closed_at__isnull=True).incident.reference == newer


# --- silences ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_silenced_alert_is_kept_but_opens_nothing(send, am_alert):
    silence = silence_save(
        ends_at=timezone.now() + timedelta(hours=2),
        comment="Database maintenance",
        matchers=[{"key": "job", "operator": "equals", "value": "db"}],
    )
    answer = send(am_alert("ReplicationLag", labels={"job": "db"}))

    assert answer["new"] == 1 and answer["incidents_opened"] == []
    alert = Alert.objects.get()
    assert alert.incident is None
    assert alert.silenced_by == silence
    assert alert.evaluate_at == silence.ends_at
    assert alert.disposition.startswith("Silenced by “Database maintenance” until ")
    assert not Incident.objects.exists()
    # Others are not silenced.
    assert send(am_alert("ReplicationLag", labels={"job": "api"}))["incidents_opened"]


@pytest.mark.django_db
def test_a_silence_for_a_service_holds_that_services_alerts(send, am_alert, api_service):
    Service.objects.create(name="Billing", slug="billing", owning_team="Money", tier=2)
    silence_save(
        ends_at=timezone.now() + timedelta(hours=1),
        comment="API deploy",
        services=[api_service],
    )
    send(am_alert("Down", labels={"service": "api"}))
    send(am_alert("Down", labels={"service": "billing"}))

    assert Alert.objects.get(labels__service="api").silenced_by is not None
    assert Alert.objects.get(labels__service="billing").incident is not None


@pytest.mark.django_db
def test_a_silence_needs_its_services_and_its_matchers_to_hold(send, am_alert, api_service):
    silence_save(
        ends_at=timezone.now() + timedelta(hours=1),
        comment="API canary",
        services=[api_service],
        matchers=[{"key": "canary", "operator": "exists"}],
    )
    send(am_alert("Down", labels={"service": "api"}))
    send(am_alert("Slow", labels={"service": "api", "canary": "1"}))

    assert Alert.objects.get(labels__alertname="Down").incident is not None
    assert Alert.objects.get(labels__alertname="Slow").silenced_by is not None


@pytest.mark.django_db
def test_a_silence_not_yet_begun_or_ended_silences_nothing(send, am_alert):
    now = timezone.now()
    for starts, ends in ((now + timedelta(hours=1), now + timedelta(hours=2)),
                         (now - timedelta(hours=2), now - timedelta(hours=1))):  # fmt: skip
        silence_save(
            starts_at=starts,
            ends_at=ends,
            comment="Window",
            matchers=[{"key": "job", "operator": "equals", "value": "api"}],
        )
    send(am_alert())
    assert Alert.objects.get().incident is not None


@pytest.mark.django_db
def test_an_ignored_alert_is_not_silenced_and_a_repeat_keeps_its_disposition(send, am_alert):
    send(am_alert("Watchdog"))
    send(am_alert("Watchdog"))
    alert = Alert.objects.get()
    assert alert.disposition.startswith("Ignored as noise")
    assert alert.times_received == 2 and alert.silenced_by is None


# --- confidential ------------------------------------------------------------------------


@pytest.fixture
def brute_force(make_source, default_rules, post_alerts):
    _, secret = make_source("auth-logs", "generic")
    response = post_alerts(
        "generic",
        {
            "title": "Failed logins",
            "labels": {"service": "api"},
            "metrics": {"failed_logins_5m": 340},
        },
        secret=secret,
    )
    assert response.status_code == 200, response.content
    return Alert.objects.get(title="Failed logins")


@pytest.mark.django_db
def test_the_security_rule_opens_a_confidential_incident(brute_force):
    incident = brute_force.incident
    assert brute_force.rule.name == "Brute force: failed logins"
    assert incident.confidential is True
    assert incident.incident_type.slug == "security"
    assert incident.status == Status.TRIAGE
    assert incident.title == "Possible brute-force attack on api"


@pytest.mark.django_db
def test_alerts_of_a_confidential_incident_are_hidden_from_an_outsider(
    brute_force, send, am_alert, outsider, security_member
):
    send(am_alert())  # an ordinary alert, for contrast
    ordinary = Alert.objects.exclude(pk=brute_force.pk).get()

    assert list(queries.alert_list_visible_to(outsider)) == [ordinary]
    assert list(queries.alert_group_list_visible_to(outsider)) == [ordinary.group]
    assert not queries.payload_list_visible_to(outsider).exists()

    assert set(queries.alert_list_visible_to(security_member)) == {brute_force, ordinary}
    assert queries.alert_group_list_visible_to(security_member).count() == 2
    assert queries.payload_list_visible_to(security_member).count() == 2


@pytest.mark.django_db
def test_a_waiting_alert_of_a_confidential_rule_is_hidden_too(
    make_source, default_rules, post_alerts, security_type, outsider, security_member
):
    rule_save(
        name="Sustained scanning",
        priority=1,
        incident_type=security_type,
        firing_for=timedelta(minutes=10),
        conditions=[{"subject": "metric", "key": "port_scans", "operator": "gte", "value": 1}],
    )
    _, secret = make_source("ids", "generic")
    post_alerts("generic", {"title": "Port scan", "metrics": {"port_scans": 3}}, secret=secret)

    alert = Alert.objects.get()
    assert alert.incident is None and alert.evaluate_at is not None
    assert not queries.alert_list_visible_to(outsider).exists()
    assert list(queries.alert_list_visible_to(security_member)) == [alert]


@pytest.mark.django_db
def test_a_participant_of_the_confidential_incident_sees_its_alerts(
    brute_force, outsider, commander
):
    from incidents.services import role_assign

    incident = brute_force.incident
    role_assign(incident=incident, role="sme", user=outsider, actor=commander, source=Source.ADMIN)
    assert list(queries.alert_list_visible_to(outsider)) == [brute_force]


@pytest.mark.django_db
def test_any_rule_of_a_confidential_type_opens_confidential_incidents(send, am_alert, outsider):
    breach = IncidentType.objects.get(slug="security")
    rule_save(
        name="Exfiltration",
        priority=1,
        incident_type=breach,
        conditions=[{"key": "alertname", "operator": "matches", "value": "Exfil.*"}],
    )
    send(am_alert("ExfilSuspected"))

    assert Incident.objects.get().confidential
    assert not queries.alert_list_visible_to(outsider).exists()
    assert DetectionRule.objects.get(name="Exfiltration").alerts.count() == 1
