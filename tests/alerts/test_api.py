"""The alerts REST API beside the intake: alerts (read), detection rules and trying them,
silences, alert sources and their secrets — endpoints, visibility, permissions, errors."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.api.intake import IntakeView
from alerts.models import (
    Alert,
    AlertPayload,
    AlertSource,
    DetectionRule,
    RuleCondition,
    Silence,
)
from incidents.models import Incident
from tests.api import client_for, errors
from tests.conftest import make_user
from tests.incidents.test_api import documented_validation_errors

ALERTS = "/api/v1/alerts/"
RULES = "/api/v1/alert-rules/"
SILENCES = "/api/v1/silences/"
SOURCES = "/api/v1/alert-sources/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def scripts(make_source, default_rules):
    """A generic source with the seeded rules in place: (source, secret)."""
    return make_source("scripts", "generic")


@pytest.fixture
def send(scripts, post_alerts):
    """Post generic alerts from the `scripts` source; return the intake's answer."""

    def _send(*alerts, secret=None):
        response = post_alerts("generic", list(alerts), secret=secret or scripts[1])
        assert response.status_code == 200, response.content
        return response.json()

    return _send


def error_attrs(response) -> set:
    return {attr for attr, _ in errors(response)}


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def api(commander):
    return client_for(commander)


@pytest.fixture
def schema(db):
    return APIClient().get("/api/schema/", {"format": "json"}).json()


# --- routing ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["alertmanager", "grafana", "generic"])
def test_intake_paths_still_reach_the_intake_views(kind):
    assert resolve(f"{ALERTS}{kind}/").func.view_class.__mro__[1] is IntakeView


def test_heartbeat_path_still_reaches_the_heartbeat_view():
    assert resolve(f"{ALERTS}scripts/heartbeat/").url_name == "heartbeat"
    assert resolve(f"{ALERTS}12/heartbeat/").url_name == "heartbeat"


def test_alert_detail_takes_only_numbers(api):
    response = api.get(f"{ALERTS}not-a-number/")
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]


def test_intake_still_takes_a_payload_after_the_router(send):
    assert send({"title": "Disk full", "labels": {"host": "db-1"}})["new"] == 1


# --- alerts ----------------------------------------------------------------------------


def test_alert_shows_what_monitoring_sent_and_what_the_rules_made_of_it(api, send):
    answer = send(
        {
            "title": "Pool exhausted",
            "fingerprint": "pool-1",
            "labels": {"service": "api", "severity": "critical"},
            "annotations": {"runbook": "https://runbooks.example.com/pool"},
            "metrics": {"pool_used": 100},
            "url": "https://grafana.example.com/d/pool",
        }
    )
    [reference] = answer["incidents_opened"]
    alert = Alert.objects.get()
    response = api.get(f"{ALERTS}{alert.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "scripts"
    assert body["fingerprint"] == "pool-1"
    assert body["status"] == "firing"
    assert body["title"] == "Pool exhausted"
    assert body["labels"]["severity"] == "critical"
    assert body["annotations"] == {"runbook": "https://runbooks.example.com/pool"}
    assert body["metrics"] == {"pool_used": 100.0}
    assert body["generator_url"] == "https://grafana.example.com/d/pool"
    assert body["times_received"] == 1
    assert body["rule"] == {"id": alert.rule_id, "name": "Critical alerts"}
    assert body["incident"] == reference
    assert body["silenced_by"] is None
    assert body["disposition"] == alert.disposition
    for name in ("starts_at", "first_seen_at", "last_seen_at"):
        assert body[name]
    assert body["ends_at"] is None and body["resolved_at"] is None


def test_alerts_list_latest_seen_first_a_page_at_a_time_without_a_count(api, send):
    for number in range(3):
        send({"title": f"Alert {number}", "fingerprint": f"fp-{number}"})
    send({"title": "Alert 0", "fingerprint": "fp-0"})  # seen again: now the latest
    first = api.get(ALERTS, {"page_size": 2})
    assert first.status_code == 200
    body = first.json()
    assert "count" not in body
    titles = [row["title"] for row in body["results"]]
    assert titles == ["Alert 0", "Alert 2"]
    rest = api.get(body["next"]).json()
    assert [row["title"] for row in rest["results"]] == ["Alert 1"]
    assert rest["next"] is None


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"status": "resolved"}, ["resolved"]),
        ({"status": "firing"}, ["watchdog", "critical", "other-source"]),
        ({"fingerprint": "critical"}, ["critical"]),
        ({"source": "other"}, ["other-source"]),
        ({"silenced": "true"}, []),
        ({"silenced": "false"}, ["watchdog", "critical", "other-source", "resolved"]),
    ],
)
def test_alerts_filter_by_status_source_fingerprint_and_silence(
    api, send, make_source, query, expected
):
    send({"title": "Gone", "fingerprint": "resolved"})
    send({"title": "Gone", "fingerprint": "resolved", "status": "resolved"})
    send({"title": "Watchdog", "fingerprint": "watchdog"})
    send({"title": "Boom", "fingerprint": "critical", "labels": {"severity": "critical"}})
    _, other = make_source("other", "generic")
    send({"title": "Elsewhere", "fingerprint": "other-source"}, secret=other)
    response = api.get(ALERTS, query)
    assert response.status_code == 200
    found = [row["fingerprint"] for row in response.json()["results"]]
    assert sorted(found) == sorted(expected)


def test_alerts_filter_by_incident_and_rule(api, send):
    send({"title": "Watchdog", "fingerprint": "watchdog"})
    answer = send({"title": "Boom", "fingerprint": "critical", "labels": {"severity": "page"}})
    [reference] = answer["incidents_opened"]
    critical = DetectionRule.objects.get(name="Critical alerts")
    watchdog = DetectionRule.objects.get(name="Watchdog (always firing)")
    by_incident = api.get(ALERTS, {"incident": reference}).json()["results"]
    assert [row["fingerprint"] for row in by_incident] == ["critical"]
    by_rule = api.get(ALERTS, {"rule": watchdog.pk}).json()["results"]
    assert [row["fingerprint"] for row in by_rule] == ["watchdog"]
    assert by_rule[0]["incident"] is None
    assert api.get(ALERTS, {"rule": critical.pk}).json()["results"][0]["incident"] == reference


def test_silenced_filter_finds_the_alerts_a_silence_holds(api, send, api_service):
    Silence.objects.create(ends_at=timezone.now() + timedelta(hours=1), comment="Deploy")
    silence = Silence.objects.get()
    silence.services.add(api_service)
    send({"title": "Deploying", "fingerprint": "held", "labels": {"service": "api"}})
    send({"title": "Watchdog", "fingerprint": "watchdog"})
    [row] = api.get(ALERTS, {"silenced": "true"}).json()["results"]
    assert row["fingerprint"] == "held"
    assert row["silenced_by"] == silence.pk
    assert row["incident"] is None


@pytest.mark.parametrize(
    "query, attr",
    [
        ({"status": "burning"}, "status"),
        ({"rule": "first"}, "rule"),
        ({"rule": "0"}, "rule"),
        ({"rule": str(10**30)}, "rule"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
    ],
)
def test_bad_alert_filters_are_400_naming_them_as_documented(api, schema, send, query, attr):
    response = api.get(ALERTS, query)
    assert response.status_code == 400, response.content
    assert error_attrs(response) == {attr}
    assert set(errors(response)) <= documented_validation_errors(schema, ALERTS, "get")


def test_a_cursor_that_is_not_ours_is_404(api):
    response = api.get(ALERTS, {"cursor": "x"})
    assert response.status_code == 404


def _queries_for_list(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ALERTS).status_code == 200
    return len(queries)


def test_alert_list_costs_the_same_queries_for_1_or_30_alerts(api, send):
    send({"title": "One", "fingerprint": "one", "labels": {"severity": "critical"}})
    api.get(ALERTS)  # the key's first use stamps last_used_at
    one = _queries_for_list(api)
    send(
        *[
            {"title": f"Many {n}", "fingerprint": f"many-{n}", "labels": {"severity": "critical"}}
            for n in range(29)
        ]
    )
    assert len(api.get(ALERTS).json()["results"]) == 30
    assert _queries_for_list(api) == one <= 10


def test_stakeholders_may_not_read_alerts(django_user_model, send):
    stakeholder = make_user(django_user_model, "sam", "Stakeholders")
    send({"title": "Boom"})
    assert client_for(stakeholder).get(ALERTS).status_code == 403


def test_reading_alerts_needs_an_api_key():
    response = APIClient().get(ALERTS)
    assert response.status_code == 401


# --- visibility ------------------------------------------------------------------------


@pytest.fixture
def brute_force(send):
    """An alert the seeded brute-force rule turns into a confidential security incident."""
    answer = send(
        {
            "title": "Failed logins",
            "fingerprint": "logins",
            "labels": {"service": "sso"},
            "metrics": {"failed_logins_5m": 500},
        }
    )
    [reference] = answer["incidents_opened"]
    incident = Incident.objects.get(reference=reference)
    assert incident.confidential
    return Alert.objects.get(fingerprint="logins")


def test_alert_of_a_confidential_incident_is_hidden_from_an_outsider(outsider, brute_force, send):
    send({"title": "Watchdog", "fingerprint": "watchdog"})
    key = client_for(outsider)
    listed = [row["fingerprint"] for row in key.get(ALERTS).json()["results"]]
    assert listed == ["watchdog"]
    assert key.get(f"{ALERTS}{brute_force.pk}/").status_code == 404
    assert key.get(ALERTS, {"incident": brute_force.incident.reference}).json()["results"] == []
    assert key.get(ALERTS, {"fingerprint": "logins"}).json()["results"] == []


def test_alert_of_a_confidential_incident_is_visible_to_the_security_group(
    security_member, brute_force
):
    key = client_for(security_member)
    assert key.get(f"{ALERTS}{brute_force.pk}/").json()["incident"] == (
        brute_force.incident.reference
    )
    assert [row["id"] for row in key.get(ALERTS).json()["results"]] == [brute_force.pk]


# --- detection rules -------------------------------------------------------------------


RULE = {
    "name": "Checkout errors",
    "priority": 50,
    "conditions": [
        {"subject": "label", "key": "service", "operator": "equals", "value": "checkout"},
        {"subject": "metric", "key": "error_rate", "operator": "gt", "value": 0.05},
    ],
    "firing_for": 300,
    "severity": "SEV2",
    "incident_type": "outage",
    "services": ["api"],
    "title_template": "Errors on {service}",
    "group_by": "{service}",
    "open_as": "declared",
}


@pytest.fixture
def rule_api(commander, default_policy, api_service):
    return client_for(commander)


def test_create_a_rule_with_its_conditions_and_read_it_back(rule_api, make_source):
    make_source("prometheus", "alertmanager")
    response = rule_api.post(RULES, {**RULE, "source": "prometheus"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    rule = DetectionRule.objects.get(name="Checkout errors")
    assert response["Location"].endswith(f"{RULES}{rule.pk}/")
    assert body["conditions"] == [
        {"subject": "label", "key": "service", "operator": "equals", "value": "checkout"},
        {"subject": "metric", "key": "error_rate", "operator": "gt", "value": "0.05"},
    ]
    assert body["firing_for"] == 300
    assert rule.firing_for == timedelta(minutes=5)
    assert body["severity"] == "SEV2"
    assert body["incident_type"] == "outage"
    assert body["services"] == ["api"]
    assert body["source"] == "prometheus"
    assert body["open_as"] == "declared"
    assert body["action"] == "open"
    assert rule_api.get(f"{RULES}{rule.pk}/").json() == body
    history = rule.history.first()
    assert history.history_user.username == "alice"


def test_patch_changes_only_what_is_given_and_replaces_the_conditions(rule_api):
    rule_id = rule_api.post(RULES, RULE, format="json").json()["id"]
    response = rule_api.patch(
        f"{RULES}{rule_id}/",
        {
            "conditions": [{"key": "team", "operator": "exists"}],
            "firing_for": None,
            "severity": None,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["conditions"] == [
        {"subject": "label", "key": "team", "operator": "exists", "value": ""}
    ]
    assert body["firing_for"] is None and body["severity"] is None
    assert body["title_template"] == "Errors on {service}"
    assert body["services"] == ["api"]
    assert RuleCondition.objects.filter(rule_id=rule_id).count() == 1


@pytest.mark.parametrize(
    "condition, problem",
    [
        ({"subject": "label", "key": "service", "operator": "gt", "value": "1"}, "label"),
        ({"subject": "metric", "key": "cpu", "operator": "matches", "value": "9.*"}, "metric"),
        ({"subject": "label", "key": "service", "operator": "matches", "value": "(api"}, "regular"),
        ({"subject": "metric", "key": "cpu", "operator": "gt", "value": "high"}, "number"),
        ({"subject": "metric", "key": "cpu", "operator": "gt", "value": "nan"}, "finite"),
        ({"subject": "label", "key": "service", "operator": "equals", "value": ""}, "value"),
        ({"subject": "label", "key": "service", "operator": "like", "value": "x"}, "like"),
        ({"subject": "tag", "key": "service", "operator": "equals", "value": "x"}, "tag"),
    ],
)
def test_a_bad_condition_is_400_naming_conditions_and_saves_nothing(
    rule_api, schema, condition, problem
):
    before = DetectionRule.objects.count(), RuleCondition.objects.count()
    body = {**RULE, "conditions": [RULE["conditions"][0], condition]}
    response = rule_api.post(RULES, body, format="json")
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert error["attr"] == "conditions"
    assert problem in error["detail"]
    assert set(errors(response)) <= documented_validation_errors(schema, RULES, "post")
    assert (DetectionRule.objects.count(), RuleCondition.objects.count()) == before


def test_a_bad_condition_in_a_patch_keeps_the_rule_as_it_was(rule_api):
    rule_id = rule_api.post(RULES, RULE, format="json").json()["id"]
    response = rule_api.patch(
        f"{RULES}{rule_id}/",
        {"name": "Renamed", "conditions": [{"key": "x", "operator": "matches", "value": "["}]},
        format="json",
    )
    assert response.status_code == 400
    assert error_attrs(response) == {"conditions"}
    rule = DetectionRule.objects.get(pk=rule_id)
    assert rule.name == "Checkout errors"
    assert rule.conditions.count() == 2


@pytest.mark.parametrize(
    "change, attr",
    [
        ({"firing_for": 8 * 24 * 3600}, "firing_for"),
        ({"firing_for": -1}, "firing_for"),
        ({"incident_type": None}, "incident_type"),
        ({"incident_type": "nope"}, "incident_type"),
        ({"severity": "SEV9"}, "severity"),
        ({"services": ["nope"]}, "services"),
        ({"source": "nope"}, "source"),
        ({"title_template": "{0.__class__}"}, "title_template"),
        ({"group_by": ""}, "group_by"),
        ({"name": ""}, "name"),
        ({"conditions": [{}] * 21}, "conditions"),
        ({"priority": 2**31}, "priority"),
        ({"action": "page"}, "action"),
    ],
)
def test_a_bad_rule_field_is_400_naming_it_and_saves_nothing(rule_api, schema, change, attr):
    before = DetectionRule.objects.count()
    response = rule_api.post(RULES, {**RULE, **change}, format="json")
    assert response.status_code == 400, response.content
    assert error_attrs(response) == {attr}
    assert set(errors(response)) <= documented_validation_errors(schema, RULES, "post")
    assert DetectionRule.objects.count() == before


def test_a_rule_name_is_unique(rule_api):
    assert rule_api.post(RULES, RULE, format="json").status_code == 201
    again = rule_api.post(RULES, RULE, format="json")
    assert again.status_code == 400
    assert error_attrs(again) == {"name"}


def test_an_ignore_rule_needs_no_incident_type(rule_api):
    body = {
        "name": "Noise",
        "action": "ignore",
        "conditions": [{"key": "team", "operator": "exists"}],
    }
    response = rule_api.post(RULES, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["incident_type"] is None


def test_delete_a_rule(rule_api):
    rule_id = rule_api.post(RULES, RULE, format="json").json()["id"]
    assert rule_api.delete(f"{RULES}{rule_id}/").status_code == 204
    assert not DetectionRule.objects.filter(pk=rule_id).exists()
    assert not RuleCondition.objects.filter(rule_id=rule_id).exists()
    assert rule_api.get(f"{RULES}{rule_id}/").status_code == 404


def test_deleting_a_rule_keeps_its_alerts_and_looks_at_waiting_ones_again(api, send):
    send({"title": "Errors", "fingerprint": "errors", "metrics": {"error_rate": 0.5}})
    alert = Alert.objects.get()
    assert alert.rule.name == "High error rate" and alert.evaluate_at is not None
    assert api.delete(f"{RULES}{alert.rule_id}/").status_code == 204
    alert.refresh_from_db()
    assert alert.rule is None
    assert alert.evaluate_at <= timezone.now()


def test_rules_list_in_the_order_they_are_tried(api, default_rules):
    response = api.get(RULES, {"page_size": 3})
    assert response.status_code == 200
    priorities = [row["priority"] for row in response.json()["results"]]
    assert priorities == sorted(priorities)
    assert response.json()["count"] == DetectionRule.objects.count()


def test_rules_filter_by_action(api, default_rules):
    rows = api.get(RULES, {"action": "ignore"}).json()["results"]
    assert [row["name"] for row in rows] == ["Watchdog (always firing)"]


def test_stakeholders_may_not_read_or_write_rules(django_user_model, default_rules):
    key = client_for(make_user(django_user_model, "sam", "Stakeholders"))
    assert key.get(RULES).status_code == 403
    assert key.post(RULES, RULE, format="json").status_code == 403


def test_responders_tune_rules(responder, default_policy, api_service):
    key = client_for(responder)
    assert key.post(RULES, RULE, format="json").status_code == 201


# --- trying rules ----------------------------------------------------------------------


def test_try_judges_each_alert_against_every_rule_and_names_the_winner(
    api, default_rules, am_alert, am_payload
):
    payload = am_payload(
        am_alert("Watchdog"),
        am_alert("DiskFull", labels={"severity": "critical", "service": "api"}),
    )
    before = (Alert.objects.count(), AlertPayload.objects.count(), Incident.objects.count())
    response = api.post(f"{RULES}try/", {"kind": "alertmanager", "payload": payload}, format="json")
    assert response.status_code == 200, response.content
    watchdog, disk = response.json()["alerts"]
    assert watchdog["title"] == "Watchdog on api-1:9100"
    assert watchdog["winner"]["rule"]["name"] == "Watchdog (always firing)"
    assert watchdog["winner"]["action"] == "ignore"
    assert disk["winner"]["rule"]["name"] == "Critical alerts"
    assert disk["winner"]["severity"] == "SEV2"
    assert disk["winner"]["silenced_by"] is None
    verdicts = {v["rule"]["name"]: v for v in disk["verdicts"]}
    assert len(verdicts) == DetectionRule.objects.count()
    assert verdicts["Critical alerts"] == {
        "rule": verdicts["Critical alerts"]["rule"],
        "matched": True,
        "reasons": [],
        "waiting_until": None,
    }
    assert verdicts["Watchdog (always firing)"]["reasons"] == [
        "alertname is 'DiskFull', not 'Watchdog'"
    ]
    assert not verdicts["Watchdog (always firing)"]["matched"]
    # Writes nothing.
    assert (Alert.objects.count(), AlertPayload.objects.count(), Incident.objects.count()) == before


def test_try_says_until_when_a_rule_waits_for_firing_for(api, default_rules):
    payload = {"title": "Errors", "metrics": {"error_rate": 0.5}}
    response = api.post(f"{RULES}try/", {"kind": "generic", "payload": payload}, format="json")
    [alert] = response.json()["alerts"]
    assert alert["winner"]["rule"]["name"] == "High error rate"
    assert alert["winner"]["waiting_until"] is not None
    [waiting] = [v for v in alert["verdicts"] if v["rule"]["name"] == "High error rate"]
    assert waiting["reasons"] == [] and not waiting["matched"] and waiting["waiting_until"]


def test_try_shows_disabled_rules_with_the_reason(api, default_rules):
    DetectionRule.objects.filter(name="Critical alerts").update(enabled=False)
    payload = {"title": "Boom", "labels": {"severity": "critical"}}
    [alert] = api.post(
        f"{RULES}try/", {"kind": "generic", "payload": payload}, format="json"
    ).json()["alerts"]
    [critical] = [v for v in alert["verdicts"] if v["rule"]["name"] == "Critical alerts"]
    assert critical["reasons"] == ["the rule is disabled"]
    assert alert["winner"]["rule"]["name"] == "Everything else"


@pytest.mark.parametrize(
    "body, attr",
    [
        ({"kind": "alertmanager", "payload": {"alerts": "none"}}, "payload"),
        ({"kind": "generic", "payload": {"status": "firing"}}, "payload"),
        ({"kind": "generic", "payload": "text"}, "payload"),
        ({"kind": "generic", "payload": [{"title": f"a{n}"} for n in range(101)]}, "payload"),
        ({"kind": "nagios", "payload": {}}, "kind"),
        ({"kind": "generic"}, "payload"),
        ({"kind": "generic", "payload": {"title": "x"}, "source": "nope"}, "source"),
    ],
)
def test_try_with_a_bad_payload_is_400_naming_it(api, schema, default_rules, body, attr):
    response = api.post(f"{RULES}try/", body, format="json")
    assert response.status_code == 400, response.content
    assert error_attrs(response) == {attr}
    assert set(errors(response)) <= documented_validation_errors(schema, f"{RULES}try/", "post")


def test_try_as_a_source_of_another_kind_is_400(api, scripts):
    body = {"kind": "alertmanager", "payload": {"alerts": []}, "source": "scripts"}
    response = api.post(f"{RULES}try/", body, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {"source"}


def test_try_as_a_source_meets_the_rules_limited_to_it(rule_api, scripts):
    limited = {**RULE, "name": "Scripts only", "firing_for": None, "source": "scripts"}
    assert rule_api.post(RULES, limited, format="json").status_code == 201
    payload = {"title": "x", "labels": {"service": "checkout"}, "metrics": {"error_rate": 1}}
    anywhere, from_scripts = (
        rule_api.post(
            f"{RULES}try/", {"kind": "generic", "payload": payload, **extra}, format="json"
        ).json()["alerts"][0]
        for extra in ({}, {"source": "scripts"})
    )
    assert anywhere["winner"]["rule"]["name"] == "High error rate"
    [limited_verdict] = [v for v in anywhere["verdicts"] if v["rule"]["name"] == "Scripts only"]
    assert limited_verdict["reasons"] == ["only for alerts from scripts"]
    assert from_scripts["winner"]["rule"]["name"] == "Scripts only"
    assert from_scripts["winner"]["services"] == ["api"]
    assert from_scripts["winner"]["incident_title"] == "Errors on checkout"


def test_whoever_reads_rules_may_try_them_but_stakeholders_not(django_user_model, default_rules):
    body = {"kind": "generic", "payload": {"title": "x"}}
    stakeholder = client_for(make_user(django_user_model, "sam", "Stakeholders"))
    assert stakeholder.post(f"{RULES}try/", body, format="json").status_code == 403
    reader = make_user(django_user_model, "vic")
    from django.contrib.auth.models import Permission

    reader.user_permissions.add(Permission.objects.get(codename="view_detectionrule"))
    assert client_for(reader).post(f"{RULES}try/", body, format="json").status_code == 200


# --- silences --------------------------------------------------------------------------


def _silence_body(**changes):
    return {
        "ends_at": (timezone.now() + timedelta(hours=2)).isoformat(),
        "comment": "Database upgrade",
        "services": ["api"],
        "matchers": [{"key": "env", "operator": "equals", "value": "prod"}],
        **changes,
    }


def test_create_a_silence_and_see_it_hold_an_alert_back(api, api_service, send):
    response = api.post(SILENCES, _silence_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["active"] is True
    assert body["created_by"] == "alice"
    assert body["services"] == ["api"]
    assert body["matchers"] == [{"key": "env", "operator": "equals", "value": "prod"}]
    assert response["Location"].endswith(f"{SILENCES}{body['id']}/")
    send({"title": "Slow", "fingerprint": "slow", "labels": {"service": "api", "env": "prod"}})
    alert = api.get(ALERTS, {"fingerprint": "slow"}).json()["results"][0]
    assert alert["silenced_by"] == body["id"]
    assert alert["incident"] is None


def test_expire_a_silence_ends_it_now_and_once(api, api_service):
    silence_id = api.post(SILENCES, _silence_body(), format="json").json()["id"]
    response = api.post(f"{SILENCES}{silence_id}/expire/")
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert Silence.objects.get(pk=silence_id).ends_at <= timezone.now()
    again = api.post(f"{SILENCES}{silence_id}/expire/")
    assert again.status_code == 400
    assert errors(again) == [("non_field_errors", "invalid")]
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    path = "/api/v1/silences/{id}/expire/"
    assert set(errors(again)) <= documented_validation_errors(schema, path, "post")


def test_active_filter_lists_the_silences_holding_alerts_now(api, api_service):
    kept = api.post(SILENCES, _silence_body(), format="json").json()["id"]
    ended = api.post(SILENCES, _silence_body(comment="Old"), format="json").json()["id"]
    api.post(f"{SILENCES}{ended}/expire/")
    assert ids(api.get(SILENCES, {"active": "true"})) == [kept]
    assert ids(api.get(SILENCES, {"active": "false"})) == [ended]


def test_patch_a_silence_keeps_what_is_not_given(api, api_service):
    silence_id = api.post(SILENCES, _silence_body(), format="json").json()["id"]
    later = timezone.now() + timedelta(days=1)
    response = api.patch(f"{SILENCES}{silence_id}/", {"ends_at": later.isoformat()}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["comment"] == "Database upgrade"
    assert body["services"] == ["api"]
    assert body["matchers"] == [{"key": "env", "operator": "equals", "value": "prod"}]
    assert Silence.objects.get(pk=silence_id).ends_at == later


def test_delete_a_silence_releases_its_alerts(api, api_service, send):
    silence_id = api.post(SILENCES, _silence_body(matchers=[]), format="json").json()["id"]
    send({"title": "Slow", "fingerprint": "slow", "labels": {"service": "api"}})
    assert api.delete(f"{SILENCES}{silence_id}/").status_code == 204
    alert = Alert.objects.get(fingerprint="slow")
    assert alert.silenced_by is None
    assert alert.evaluate_at <= timezone.now()


@pytest.mark.parametrize(
    "changes, attr",
    [
        ({"ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
        ({"ends_at": (timezone.now() + timedelta(days=100)).isoformat()}, "ends_at"),
        ({"ends_at": "soon"}, "ends_at"),
        ({"services": [], "matchers": []}, "matchers"),
        ({"matchers": [{"key": "cpu", "operator": "gt", "value": "9"}]}, "matchers"),
        ({"matchers": [{"key": "x", "operator": "matches", "value": "("}]}, "matchers"),
        ({"services": ["nope"]}, "services"),
        ({"comment": ""}, "comment"),
        ({"comment": "   "}, "comment"),
    ],
)
def test_a_bad_silence_is_400_naming_the_field_and_saves_nothing(
    api, schema, api_service, changes, attr
):
    response = api.post(SILENCES, _silence_body(**changes), format="json")
    assert response.status_code == 400, response.content
    assert error_attrs(response) == {attr}
    assert set(errors(response)) <= documented_validation_errors(schema, SILENCES, "post")
    assert not Silence.objects.exists()


def test_stakeholders_may_not_silence(django_user_model, api_service):
    key = client_for(make_user(django_user_model, "sam", "Stakeholders"))
    assert key.post(SILENCES, _silence_body(), format="json").status_code == 403
    assert not Silence.objects.exists()


# --- alert sources ---------------------------------------------------------------------


@pytest.fixture
def security_api(security_member):
    return client_for(security_member)


def test_create_a_source_shows_its_secret_once_and_the_secret_works(
    security_api, default_rules, post_alerts
):
    response = security_api.post(
        SOURCES, {"name": "nagios-bridge", "kind": "generic", "heartbeat_minutes": 5}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    secret = body["secret"]
    assert body["secret_hint"] == secret_hint(secret)
    assert body["intake_url"] == "http://testserver/api/v1/alerts/generic/"
    assert body["heartbeat_url"] == "http://testserver/api/v1/alerts/nagios-bridge/heartbeat/"
    assert response["Location"].endswith(f"{SOURCES}nagios-bridge/")
    # The secret is never shown again.
    for read in (security_api.get(SOURCES), security_api.get(f"{SOURCES}nagios-bridge/")):
        assert read.status_code == 200
        assert secret not in read.content.decode()
        assert "secret" not in (read.json().get("results") or [read.json()])[0]
    taken = post_alerts("generic", {"title": "Disk full"}, secret=secret)
    assert taken.status_code == 200, taken.content
    assert Alert.objects.get().source.name == "nagios-bridge"


def secret_hint(secret: str) -> str:
    return f"…{secret[-4:]}"


def test_rotating_a_secret_invalidates_the_old_one(security_api, default_rules, post_alerts):
    old = security_api.post(SOURCES, {"name": "cron", "kind": "generic"}, format="json").json()
    response = security_api.post(f"{SOURCES}cron/rotate-secret/")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    new = response.json()["secret"]
    assert new != old["secret"]
    assert response.json()["secret_hint"] == secret_hint(new)
    assert post_alerts("generic", {"title": "x"}, secret=old["secret"]).status_code == 401
    assert post_alerts("generic", {"title": "x"}, secret=new).status_code == 200


def test_patch_a_source_disables_it(security_api, default_rules, post_alerts):
    secret = security_api.post(SOURCES, {"name": "cron", "kind": "generic"}, format="json").json()[
        "secret"
    ]
    response = security_api.patch(f"{SOURCES}cron/", {"enabled": False}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is False
    assert "secret" not in response.json()
    assert post_alerts("generic", {"title": "x"}, secret=secret).status_code == 403


@pytest.mark.parametrize(
    "body, attr",
    [
        ({"name": "Not A Slug", "kind": "generic"}, "name"),
        ({"name": "", "kind": "generic"}, "name"),
        ({"name": "x", "kind": "nagios"}, "kind"),
        ({"name": "x", "kind": "grafana", "signature_header": "X Bad"}, "signature_header"),
        ({"name": "x", "kind": "grafana", "signature_header": ""}, "signature_header"),
        ({"name": "x", "kind": "generic", "heartbeat_minutes": 0}, "heartbeat_minutes"),
    ],
)
def test_a_bad_source_is_400_naming_the_field_and_creates_nothing(security_api, schema, body, attr):
    response = security_api.post(SOURCES, body, format="json")
    assert response.status_code == 400, response.content
    assert error_attrs(response) == {attr}
    assert set(errors(response)) <= documented_validation_errors(schema, SOURCES, "post")
    assert not AlertSource.objects.exists()


def test_a_source_name_is_unique(security_api, scripts):
    response = security_api.post(SOURCES, {"name": "scripts", "kind": "generic"}, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {"name"}


def test_a_responder_may_read_sources_but_not_create_or_rotate(responder, scripts):
    key = client_for(responder)
    assert key.get(SOURCES).status_code == 200
    assert [row["name"] for row in key.get(SOURCES).json()["results"]] == ["scripts"]
    assert key.post(SOURCES, {"name": "mine", "kind": "generic"}, format="json").status_code == 403
    assert key.post(f"{SOURCES}scripts/rotate-secret/").status_code == 403
    assert key.patch(f"{SOURCES}scripts/", {"enabled": False}, format="json").status_code == 403
    assert AlertSource.objects.get().enabled
    assert not AlertSource.objects.filter(name="mine").exists()


def test_a_commander_may_read_sources_but_not_create_them(api, scripts):
    assert api.get(f"{SOURCES}scripts/").status_code == 200
    assert api.post(SOURCES, {"name": "mine", "kind": "generic"}, format="json").status_code == 403


def test_sources_cannot_be_deleted(security_api, scripts):
    assert security_api.delete(f"{SOURCES}scripts/").status_code == 405
    assert AlertSource.objects.exists()


# --- schema ----------------------------------------------------------------------------


def test_schema_describes_the_alerts_api_with_its_errors(schema):
    expected = {
        "/api/v1/alerts/": {"get"},
        "/api/v1/alerts/{id}/": {"get"},
        "/api/v1/alert-rules/": {"get", "post"},
        "/api/v1/alert-rules/{id}/": {"get", "patch", "delete"},
        "/api/v1/alert-rules/try/": {"post"},
        "/api/v1/silences/": {"get", "post"},
        "/api/v1/silences/{id}/": {"get", "patch", "delete"},
        "/api/v1/silences/{id}/expire/": {"post"},
        "/api/v1/alert-sources/": {"get", "post"},
        "/api/v1/alert-sources/{name}/": {"get", "patch"},
        "/api/v1/alert-sources/{name}/rotate-secret/": {"post"},
        "/api/v1/alerts/alertmanager/": {"post"},
        "/api/v1/alerts/{source}/heartbeat/": {"post"},
    }
    paths = schema["paths"]
    for path, methods in expected.items():
        operations = {m for m in paths[path] if m in {"get", "post", "patch", "delete", "put"}}
        assert operations == methods, path
        for method in methods:
            responses = paths[path][method]["responses"]
            assert {"400", "401", "404"} <= set(responses), (method, path)
            if not path.startswith("/api/v1/alerts/") or path in ("/api/v1/alerts/",):
                assert "403" in responses, (method, path)


def test_schema_says_firing_for_is_seconds(schema):
    fields = schema["components"]["schemas"]["DetectionRuleCreateRequest"]["properties"]
    assert fields["firing_for"]["type"] == "integer"
    assert "Seconds" in fields["firing_for"]["description"]
    assert fields["firing_for"]["maximum"] == 604800


def test_the_secret_appears_only_in_the_answers_that_make_one(schema):
    def has_secret(path, method, status):
        content = schema["paths"][path][method]["responses"][status]["content"]
        name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        return "secret" in schema["components"]["schemas"][name]["properties"]

    assert has_secret("/api/v1/alert-sources/", "post", "201")
    assert has_secret("/api/v1/alert-sources/{name}/rotate-secret/", "post", "200")
    assert not has_secret("/api/v1/alert-sources/{name}/", "get", "200")
    assert not has_secret("/api/v1/alert-sources/{name}/", "patch", "200")
