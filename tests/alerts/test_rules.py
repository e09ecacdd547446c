"""Detection rules: every condition operator, "firing for", the order rules are tried in,
templates, severity and services from labels, the seeded rules, and what rule_save
refuses."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, DetectionRule, Operator, RuleCondition
from alerts.rules import Book, Subject, judge, render
from alerts.services import rule_save
from incidents.errors import DomainError
from incidents.models import Incident, IncidentType, Service, Severity


def condition(key, operator, value="", subject=None):
    if subject is None:
        subject = "metric" if operator in ("gt", "gte", "lt", "lte", "eq", "ne") else "label"
    return RuleCondition(subject=subject, key=key, operator=operator, value=value)


def subject(labels=None, annotations=None, metrics=None, starts_at=None, source_id=1, title=""):
    return Subject(
        source_id=source_id,
        labels=labels or {},
        annotations=annotations or {},
        metrics=metrics or {},
        starts_at=starts_at or timezone.now(),
        title=title,
    )


# --- label operators -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, operator, value, labels, holds",
    [
        ("severity", "equals", "critical", {"severity": "critical"}, True),
        ("severity", "equals", "critical", {"severity": "Critical"}, False),
        ("severity", "equals", "critical", {"severity": "warning"}, False),
        ("severity", "equals", "critical", {}, False),
        ("env", "not_equals", "staging", {"env": "prod"}, True),
        ("env", "not_equals", "staging", {"env": "staging"}, False),
        ("env", "not_equals", "staging", {}, True),  # no label is not "staging"
        ("severity", "matches", "critical|page", {"severity": "page"}, True),
        ("instance", "matches", "api-.*", {"instance": "api-7"}, True),
        # Anchored, as Prometheus matches label regexes: a part is not a match.
        ("severity", "matches", "crit", {"severity": "critical"}, False),
        ("instance", "matches", "api", {"instance": "eu-api-1"}, False),
        ("instance", "matches", ".*", {}, False),
        ("team", "exists", "", {"team": ""}, True),
        ("team", "exists", "", {"team": "blue"}, True),
        ("team", "exists", "", {"other": "x"}, False),
    ],
)
def test_label_operators(key, operator, value, labels, holds):
    failure = condition(key, operator, value).failure(labels, {})
    assert (failure is None) is holds, failure


def test_label_failures_say_why():
    assert condition("severity", "equals", "critical").failure({"severity": "warning"}, {}) == (
        "severity is 'warning', not 'critical'"
    )
    assert condition("severity", "equals", "x").failure({}, {}) == "no label severity"
    assert condition("env", "not_equals", "prod").failure({"env": "prod"}, {}) == "env is 'prod'"
    assert (
        condition("i", "matches", "a.*").failure({"i": "b1"}, {}) == "i 'b1' does not match /a.*/"
    )
    assert condition("team", "exists").failure({}, {}) == "no label team"


# --- metric operators ------------------------------------------------------------------


@pytest.mark.parametrize(
    "operator, threshold, value, holds",
    [
        ("gt", "0.1", 0.11, True),
        ("gt", "0.1", 0.1, False),
        ("gt", "0.1", 0.09, False),
        ("gte", "95", 95.0, True),
        ("gte", "95", 94.99, False),
        ("lt", "1", 0.5, True),
        ("lt", "1", 1.0, False),
        ("lte", "1", 1.0, True),
        ("lte", "1", 1.01, False),
        ("eq", "0", 0.0, True),
        ("eq", "0", 1.0, False),
        ("ne", "0", 2.0, True),
        ("ne", "0", 0.0, False),
        ("gt", "-5", -4.0, True),
        ("gt", "1e3", 1001.0, True),
    ],
)
def test_metric_operators(operator, threshold, value, holds):
    failure = condition("m", operator, threshold).failure({}, {"m": value})
    assert (failure is None) is holds, failure


def test_metric_failures_say_why():
    assert condition("error_rate", "gt", "0.1").failure({}, {}) == "no metric value error_rate"
    assert condition("error_rate", "gt", "0.1").failure({}, {"error_rate": 0.05}) == (
        "error_rate is 0.05, so not error_rate > 0.1"
    )


def test_a_metric_condition_ignores_a_label_of_the_same_name():
    assert condition("healthy_nodes", "eq", "0").failure({"healthy_nodes": "0"}, {}) == (
        "no metric value healthy_nodes"
    )


def test_every_operator_is_covered_above():
    assert set(Operator.values) == {
        "equals", "not_equals", "matches", "exists", "gt", "gte", "lt", "lte", "eq", "ne",
    }  # fmt: skip


# --- judging a rule ----------------------------------------------------------------------


@pytest.fixture
def make_rule(default_policy):
    outage = IncidentType.objects.get(slug="outage")

    def _make(name="Rule", conditions=(), **fields):
        fields.setdefault("incident_type", outage)
        return rule_save(name=name, conditions=list(conditions), **fields)

    return _make


def test_every_condition_must_hold_and_each_failure_is_listed(make_rule):
    rule = make_rule(
        conditions=[
            {"key": "severity", "operator": "equals", "value": "critical"},
            {"subject": "metric", "key": "error_rate", "operator": "gt", "value": 0.1},
        ]
    )
    now = timezone.now()

    assert judge(rule, subject({"severity": "critical"}, metrics={"error_rate": 0.5}), now).matched
    verdict = judge(rule, subject({"severity": "warning"}, metrics={"error_rate": 0.01}), now)
    assert not verdict.matched
    assert verdict.reasons == [
        "severity is 'warning', not 'critical'",
        "error_rate is 0.01, so not error_rate > 0.1",
    ]


def test_a_rule_without_conditions_matches_everything(make_rule):
    assert judge(make_rule(), subject(), timezone.now()).matched


def test_a_disabled_rule_says_so(make_rule):
    verdict = judge(make_rule(enabled=False), subject(), timezone.now())
    assert verdict.reasons == ["the rule is disabled"]


def test_a_rule_for_one_source_does_not_match_another(make_rule, make_source):
    source, _ = make_source("grafana", "grafana")
    rule = make_rule(source=source)
    now = timezone.now()

    assert judge(rule, subject(source_id=source.pk), now).matched
    assert judge(rule, subject(source_id=source.pk + 1), now).reasons == [
        "only for alerts from grafana"
    ]


def test_firing_for_waits_until_the_alert_has_fired_that_long(make_rule):
    rule = make_rule(firing_for=timedelta(minutes=5))
    now = timezone.now()

    waiting = judge(rule, subject(starts_at=now - timedelta(minutes=2)), now)
    assert waiting.holds and not waiting.matched
    assert waiting.waiting_until == now + timedelta(minutes=3)
    assert judge(rule, subject(starts_at=now - timedelta(minutes=5)), now).matched
    assert judge(rule, subject(starts_at=now - timedelta(hours=1)), now).matched


def test_firing_for_does_not_excuse_a_failing_condition(make_rule):
    rule = make_rule(
        firing_for=timedelta(minutes=5),
        conditions=[{"key": "severity", "operator": "exists"}],
    )
    verdict = judge(rule, subject(), timezone.now())
    assert verdict.reasons == ["no label severity"] and verdict.waiting_until is None


# --- the Book: order, severity, services, templates --------------------------------------


def book_of(*rules):
    return Book.load(
        timezone.now(), rules=DetectionRule.objects.filter(pk__in=[r.pk for r in rules])
    )


def test_rules_are_tried_by_priority_and_the_first_holding_wins(make_rule):
    low = make_rule("Catch-all", priority=1000)
    high = make_rule(
        "Critical", priority=10, conditions=[{"key": "severity", "operator": "exists"}]
    )
    book = book_of(low, high)
    now = timezone.now()

    assert book.first_holding(subject({"severity": "critical"}), now).rule == high
    assert book.first_holding(subject(), now).rule == low
    assert [v.rule for v in book.verdicts(subject(), now)] == [high, low]


def test_a_waiting_rule_keeps_later_rules_from_taking_the_alert(make_rule):
    sustained = make_rule("Sustained", priority=10, firing_for=timedelta(minutes=5))
    make_rule("Catch-all", priority=1000)
    book = Book.load(
        timezone.now(), rules=DetectionRule.objects.filter(name__in=["Sustained", "Catch-all"])
    )

    verdict = book.first_holding(subject(), timezone.now())
    assert verdict.rule == sustained and verdict.waiting_until is not None


def test_only_enabled_rules_are_loaded_by_default(make_rule):
    make_rule("On")
    make_rule("Off", enabled=False)
    names = {rule.name for rule in Book.load(timezone.now()).rules}
    assert "On" in names and "Off" not in names


def test_severity_from_the_rule_else_the_label_else_the_lowest(make_rule, sev2):
    fixed = make_rule("Fixed", severity=sev2)
    free = make_rule("Free")
    book = book_of(fixed, free)

    assert book.severity_for(fixed, subject({"severity": "critical"})) == sev2
    assert book.severity_for(free, subject({"severity": "critical"})).key == "SEV1"
    assert book.severity_for(free, subject({"severity": "SEV3"})).key == "SEV3"
    assert book.severity_for(free, subject({"severity": "whatever"})) == (
        Severity.objects.order_by("rank").last()
    )
    assert book.severity_for(free, subject()) == Severity.objects.order_by("rank").last()


def test_services_fixed_and_from_the_label_by_slug_or_name(make_rule, api_service):
    billing = Service.objects.create(name="Billing", slug="billing", owning_team="Money", tier=2)
    fixed = make_rule("Fixed", services=[billing])
    book = book_of(fixed)

    assert book.services_for(fixed, subject({"service": "api"})) == [billing, api_service]
    assert book.services_for(fixed, subject({"service": "Public API"})) == [billing, api_service]
    assert book.services_for(fixed, subject({"service": " API "})) == [billing, api_service]
    assert book.services_for(fixed, subject({"service": "billing"})) == [billing]
    assert book.services_for(fixed, subject({"service": "nope"})) == [billing]

    other = make_rule("Other label", service_label="app")
    assert book_of(other).services_for(other, subject({"app": "api", "service": "x"})) == [
        api_service
    ]
    none = make_rule("No label", service_label="")
    assert book_of(none).services_for(none, subject({"service": "api"})) == []


def test_render_fills_labels_then_annotations_and_drops_unknown_names():
    alert = subject(
        {"alertname": "DiskFull", "instance": "db-1", "summary": "from label"},
        {"summary": "from annotation", "runbook": "https://rb"},
    )
    assert render("{alertname} on {instance}", alert) == "DiskFull on db-1"
    assert render("{summary}", alert) == "from label"
    assert render("see {runbook}", alert) == "see https://rb"
    assert render("{alertname} on {missing}  now", alert) == "DiskFull on now"
    assert render("no placeholders", alert) == "no placeholders"


def test_render_reaches_no_attributes():
    alert = subject({"alertname": "X"})
    assert render("{0.__class__}", alert) == "{0.__class__}"
    assert render("{alertname.__class__}", alert) == ""


def test_label_names_with_dots_and_dashes_render(make_rule):
    alert = subject({"k8s.pod": "web-1", "app-name": "shop"})
    assert render("{k8s.pod}/{app-name}", alert) == "web-1/shop"


def test_title_template_falls_back_to_the_alert_title_and_is_cut_to_fit(make_rule):
    empty = make_rule("Empty", title_template="{nothing}")
    long = make_rule("Long", title_template="{text}")
    book = book_of(empty, long)

    assert book.title_for(empty, subject(title="Disk full on db-1")) == "Disk full on db-1"
    # Cut to what an incident title holds.
    limit = Incident._meta.get_field("title").max_length
    assert book.title_for(long, subject({"text": "x" * 1000})) == "x" * limit


def test_group_key_is_per_rule(make_rule):
    one = make_rule("One", group_by="{service}/{alertname}")
    two = make_rule("Two", group_by="{service}/{alertname}")
    book = book_of(one, two)
    alert = subject({"service": "api", "alertname": "Down"})

    assert book.group_key(one, alert) == f"rule-{one.pk}:api/Down"
    assert book.group_key(one, alert) != book.group_key(two, alert)


# --- rule_save -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, message",
    [
        ({"key": "x", "operator": "matches", "value": "("}, "not a regular expression"),
        ({"key": "x", "operator": "gt", "value": "1"}, "a label condition uses one of"),
        ({"subject": "metric", "key": "x", "operator": "equals"}, "a metric condition uses"),
        ({"subject": "metric", "key": "x", "operator": "gt", "value": "ten"}, "must be a number"),
        ({"subject": "metric", "key": "x", "operator": "gt", "value": "inf"}, "must be finite"),
        ({"subject": "metric", "key": "x", "operator": "gt", "value": "nan"}, "must be finite"),
        ({"key": "x", "operator": "equals", "value": ""}, "give the value to compare with"),
        ({"key": "", "operator": "exists"}, "name the label"),
        ({"subject": "annotation", "key": "x", "operator": "exists"}, "label or metric"),
    ],
)
def test_rule_save_refuses_a_bad_condition(make_rule, row, message):
    with pytest.raises(DomainError, match=message):
        make_rule(conditions=[row])
    assert not DetectionRule.objects.filter(name="Rule").exists()  # nothing half-saved


def test_rule_save_refuses_stray_braces_in_templates(make_rule):
    with pytest.raises(DomainError, match="placeholders only") as caught:
        make_rule(title_template="{0.__class__}")
    assert caught.value.field == "title_template"
    with pytest.raises(DomainError, match="placeholders only"):
        make_rule(group_by="{service")


def test_rule_save_needs_an_incident_type_to_open_but_not_to_ignore(make_rule):
    with pytest.raises(DomainError, match="names their type"):
        make_rule(incident_type=None)
    assert make_rule(incident_type=None, action="ignore").action == "ignore"


def test_rule_save_replaces_conditions_only_when_given(make_rule):
    rule = make_rule(conditions=[{"key": "a", "operator": "exists"}])
    rule_save(rule=rule, priority=5)
    assert [str(c) for c in rule.conditions.all()] == ["a exists"]
    rule_save(rule=rule, conditions=[{"key": "b", "operator": "not_equals", "value": "x"}])
    assert [str(c) for c in rule.conditions.all()] == ["b ≠ x"]


def test_rule_save_takes_a_number_as_threshold(make_rule):
    rule = make_rule(conditions=[{"subject": "metric", "key": "m", "operator": "gte", "value": 95}])
    assert rule.conditions.get().value == "95"


# --- the seeded rules, through the intake --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "metrics, labels, rule, severity, incident_type",
    [
        ({"healthy_nodes": 0}, {}, "Complete outage: no healthy nodes", "SEV1", "outage"),
        ({"failed_logins_5m": 101}, {}, "Brute force: failed logins", "SEV2", "security"),
        ({"p99_latency_seconds": 12.5}, {}, "Extreme latency", "SEV2", "performance"),
        ({"cpu_percent": 96}, {}, "CPU exhaustion", "SEV2", "performance"),
        ({"memory_percent": 99}, {}, "Memory exhaustion", "SEV2", "performance"),
        ({"disk_percent": 95.5}, {}, "Disk exhaustion", "SEV2", "performance"),
        ({}, {"severity": "page"}, "Critical alerts", "SEV2", "outage"),
        ({"healthy_nodes": 1}, {"severity": "high"}, "Everything else", "SEV2", "outage"),
        ({"cpu_percent": 95}, {}, "Everything else", "SEV4", "outage"),
        ({"failed_logins_5m": 100}, {}, "Everything else", "SEV4", "outage"),
    ],
)
def test_seeded_rules_from_the_reference_documents(
    make_source, default_rules, post_alerts, metrics, labels, rule, severity, incident_type
):
    _, secret = make_source("scripts", "generic")
    response = post_alerts(
        "generic",
        {"title": "Probe", "labels": {"service": "api", **labels}, "metrics": metrics},
        secret=secret,
    )

    assert response.status_code == 200, response.content
    alert = Alert.objects.get()
    assert alert.rule.name == rule
    assert alert.incident.severity.key == severity
    assert alert.incident.incident_type.slug == incident_type
    assert alert.incident.status == "triage"


@pytest.mark.django_db
def test_seeded_watchdog_rule_ignores_the_always_firing_alert(
    prometheus, post_alerts, am_alert, am_payload
):
    _, secret = prometheus
    response = post_alerts("alertmanager", am_payload(am_alert("Watchdog")), secret=secret)

    assert response.status_code == 200
    alert = Alert.objects.get()
    assert alert.incident is None
    assert alert.disposition == "Ignored as noise by rule “Watchdog (always firing)”."


@pytest.mark.django_db
def test_seeded_error_rate_rule_waits_five_minutes(make_source, default_rules, post_alerts):
    _, secret = make_source("scripts", "generic")
    post_alerts("generic", {"title": "Errors", "metrics": {"error_rate": 0.2}}, secret=secret)

    alert = Alert.objects.get()
    assert alert.incident is None
    assert alert.rule.name == "High error rate"
    assert alert.evaluate_at == alert.starts_at + timedelta(minutes=5)
    assert alert.disposition.startswith("Waiting: rule “High error rate” matches once it has")


@pytest.mark.django_db
def test_no_rule_matching_is_said_on_the_alert(make_source, default_policy, post_alerts):
    DetectionRule.objects.all().delete()
    _, secret = make_source("scripts", "generic")
    response = post_alerts("generic", {"title": "Lonely"}, secret=secret)

    assert response.status_code == 200
    alert = Alert.objects.get()
    assert alert.incident is None and alert.rule is None
    assert alert.disposition == "No rule matched."


@pytest.mark.django_db
def test_a_declared_rule_opens_a_declared_incident(
    make_rule, make_source, default_rules, post_alerts, sev1
):
    make_rule(
        "Payments down",
        priority=1,
        severity=sev1,
        open_as="declared",
        conditions=[{"key": "service", "operator": "equals", "value": "payments"}],
        title_template="{service} is down ({alertname})",
        environment="staging",
    )
    _, secret = make_source("scripts", "generic")
    post_alerts(
        "generic", {"title": "Probe failed", "labels": {"service": "payments"}}, secret=secret
    )

    incident = Alert.objects.get().incident
    assert incident.status == "declared"
    assert incident.title == "payments is down (Probe failed)"
    assert incident.severity == sev1
    assert incident.environment == "staging"
    assert incident.detection_source == "monitoring_alert"
