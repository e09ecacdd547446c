"""The alerts admin, used as commanders, responders and the security group use it:
sources and their secrets, raw payloads, alerts, rules (and trying them), silences, and
the alerts on the incident admin."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts import secrets
from alerts.models import (
    Alert,
    AlertGroup,
    AlertPayload,
    AlertSource,
    DetectionRule,
    RuleCondition,
    Silence,
)
from alerts.services import payload_receive, silence_save
from incidents import services as incident_services
from incidents.models import Incident, IncidentType, Source, TimelineEvent
from tests.conftest import make_user
from tests.forms import form_data

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"admin:alerts_{name}", args=args)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def body_of(response) -> str:
    return response.content.decode()


@pytest.fixture
def scripts(make_source, default_rules):
    """A generic source with the seeded rules in place."""
    source, _ = make_source("scripts", "generic")
    return source


@pytest.fixture
def receive(scripts):
    """Take generic alerts in from `scripts`, as the intake does; return the payload."""

    def _receive(*alerts, source=None):
        payload, _ = payload_receive(
            source=source or scripts, body=json.dumps(list(alerts)).encode(), content_type="json"
        )
        return payload

    return _receive


def generic(title, fingerprint, status="firing", **fields):
    return {"title": title, "fingerprint": fingerprint, "status": status, **fields}


@pytest.fixture
def security_client(client, security_member):
    client.force_login(security_member)
    return client


@pytest.fixture
def brute_force(receive):
    """An alert the seeded brute-force rule turns into a confidential security incident."""
    receive(
        generic(
            "Failed logins", "logins", labels={"service": "sso"}, metrics={"failed_logins_5m": 500}
        )
    )
    alert = Alert.objects.select_related("incident").get(fingerprint="logins")
    assert alert.incident.confidential
    return alert


# --- every page renders --------------------------------------------------------------------


def test_every_alerts_page_renders_for_a_commander(commander_client, receive, api_service):
    receive(
        generic("Disk almost full", "disk", labels={"service": "api"}, metrics={"disk_percent": 99})
    )
    alert = Alert.objects.get(fingerprint="disk")
    rule = DetectionRule.objects.get(name="Disk exhaustion")
    source = AlertSource.objects.get(name="scripts")
    silence = silence_save(
        ends_at=timezone.now() + timedelta(hours=1), comment="Maintenance", services=[api_service]
    )
    pages = [
        url("alert_changelist"),
        url("alert_change", alert.pk),
        url("alertgroup_changelist"),
        url("alertgroup_change", alert.group_id),
        url("alertsource_changelist"),
        url("alertsource_change", source.pk),
        url("detectionrule_changelist"),
        url("detectionrule_add"),
        url("detectionrule_change", rule.pk),
        url("detectionrule_try"),
        url("silence_changelist"),
        url("silence_add"),
        url("silence_change", silence.pk),
        reverse("admin:incidents_incident_change", args=[alert.incident_id]),
        reverse("admin:incidents_incident_changelist"),
        reverse("admin:app_list", args=["alerts"]),
    ]
    for page in pages:
        response = commander_client.get(page)
        assert response.status_code == 200, page


def test_the_source_pages_render_for_the_security_group(security_client, scripts, receive):
    payload = receive(generic("Disk almost full", "disk"))
    for page in (
        url("alertsource_add"),
        url("alertsource_change", scripts.pk),
        url("alertpayload_changelist"),
        url("alertpayload_change", payload.pk),
    ):
        assert security_client.get(page).status_code == 200, page


# --- sources and their secrets ---------------------------------------------------------------


def add_source(client, **fields):
    data = {
        "name": "prometheus",
        "kind": "alertmanager",
        "description": "The production Alertmanager",
        "enabled": "on",
        "signature_header": "X-Grafana-Alerting-Signature",
        "timestamp_header": "X-Grafana-Alerting-Timestamp",
        "heartbeat_minutes": "",
        **fields,
    }
    return client.post(url("alertsource_add"), data)


def test_adding_a_source_shows_its_secret_once_with_where_to_post_it(security_client):
    response = add_source(security_client, heartbeat_minutes="10")
    assert response.status_code == 200
    source = AlertSource.objects.get(name="prometheus")
    secret = secrets.secret_of(source)
    page = body_of(response)
    assert secret in page
    assert "shown this once" in " ".join(messages_of(response))
    assert "http://testserver/api/v1/alerts/alertmanager/" in page
    # A receiver alertmanager.yml takes as it is, with the secret as a bearer token.
    assert "webhook_configs:" in page and "type: Bearer" in page
    assert f"credentials: &quot;{secret}&quot;" in page
    assert "http://testserver/api/v1/alerts/prometheus/heartbeat/" in page
    assert "no-store" in response["Cache-Control"]
    # Made through the service: the hint is stored, the secret works, and is shown no more.
    assert source.secret_hint == secrets.hint_of(secret) and secrets.token_matches(source, secret)
    assert source.history.first().history_user.username == "carol"
    for page in (url("alertsource_changelist"), url("alertsource_change", source.pk)):
        shown = body_of(security_client.get(page))
        assert secret not in shown and source.secret_hint in shown


def test_a_refused_source_shows_the_form_again_with_what_was_typed(security_client):
    response = add_source(security_client, signature_header="X Bad Header")
    assert response.status_code == 200
    page = body_of(response)
    assert "A header name is letters, digits and dashes." in page
    assert 'value="X Bad Header"' in page and "The production Alertmanager" in page
    assert not AlertSource.objects.filter(name="prometheus").exists()


def test_a_commander_sees_sources_but_may_not_add_or_rotate_them(commander_client, scripts):
    assert commander_client.get(url("alertsource_add")).status_code == 403
    page = body_of(commander_client.get(url("alertsource_changelist")))
    assert "scripts" in page and 'value="rotate_secret"' not in page


def test_rotating_asks_first_then_shows_the_new_secret_once(security_client, make_source):
    source, old = make_source("grafana-prod", "grafana")
    rotate = {"action": "rotate_secret", "_selected_action": [source.pk]}
    asked = security_client.post(url("alertsource_changelist"), rotate)
    assert asked.status_code == 200 and "stops working at once" in body_of(asked)
    source.refresh_from_db()
    assert secrets.token_matches(source, old)  # nothing rotated yet

    response = security_client.post(
        url("alertsource_changelist"), {**rotate, "rotate_confirmed": "yes"}
    )
    source.refresh_from_db()
    new = secrets.secret_of(source)
    assert new != old and new in body_of(response)
    assert not secrets.token_matches(source, old) and secrets.token_matches(source, new)
    assert "http://testserver/api/v1/alerts/grafana/?source=grafana-prod" in body_of(response)
    assert new not in body_of(security_client.get(url("alertsource_change", source.pk)))


def test_disable_and_enable_a_source(security_client, scripts):
    changelist = url("alertsource_changelist")
    response = security_client.post(
        changelist, {"action": "disable", "_selected_action": [scripts.pk]}, follow=True
    )
    assert "Disabled 1 alert source(s)." in messages_of(response)
    scripts.refresh_from_db()
    assert not scripts.enabled
    security_client.post(changelist, {"action": "enable", "_selected_action": [scripts.pk]})
    scripts.refresh_from_db()
    assert scripts.enabled


def test_a_source_change_goes_through_the_service(security_client, scripts):
    change = url("alertsource_change", scripts.pk)
    data = form_data(body_of(security_client.get(change)), "alertsource_form")
    data["heartbeat_minutes"] = "0"
    response = security_client.post(change, data)
    assert "Give whole minutes, 1 to 10,080 (a week)." in body_of(response)
    data["heartbeat_minutes"] = "15"
    assert security_client.post(change, data).status_code == 302
    scripts.refresh_from_db()
    assert scripts.heartbeat_minutes == 15


# --- raw payloads ------------------------------------------------------------------------------


def test_payloads_are_hidden_from_a_commander_outside_the_security_group(commander_client, receive):
    payload = receive(generic("Disk almost full", "disk"))
    assert commander_client.get(url("alertpayload_changelist")).status_code == 403
    assert commander_client.get(url("alertpayload_change", payload.pk)).status_code == 403
    assert "Alert payloads" not in body_of(commander_client.get(reverse("admin:index")))
    # The alert's page says where the raw payload is, without a link to it.
    alert_page = body_of(commander_client.get(url("alert_change", Alert.objects.get().pk)))
    assert url("alertpayload_change", payload.pk) not in alert_page


def test_the_security_group_reads_raw_payloads_pretty_printed(security_client, receive, scripts):
    payload = receive(generic("Disk almost full", "disk", labels={"service": "api"}))
    AlertPayload.objects.create(
        source=scripts,
        body="{not json",
        status="rejected",
        error="The body is not JSON: Expecting property name at line 1.",
    )
    listed = body_of(security_client.get(url("alertpayload_changelist")))
    assert "The body is not JSON" in listed and "Rejected" in listed
    page = body_of(security_client.get(url("alertpayload_change", payload.pk)))
    assert (
        '<pre class="alerts-raw">[\n  {\n    &quot;title&quot;: &quot;Disk almost full&quot;'
        in page
    )
    assert 'name="_save"' not in page  # read-only
    assert security_client.get(url("alertpayload_add")).status_code == 403
    alert_page = body_of(security_client.get(url("alert_change", Alert.objects.get().pk)))
    assert url("alertpayload_change", payload.pk) in alert_page


def test_process_again_takes_in_a_payload_a_failure_left_behind(security_client, scripts):
    waiting = AlertPayload.objects.create(
        source=scripts,
        body=json.dumps([generic("Disk almost full", "disk")]),
        status=AlertPayload.Status.RECEIVED,
        error="OperationalError: database is locked",
    )
    done = AlertPayload.objects.create(source=scripts, body="[]", status="processed")
    response = security_client.post(
        url("alertpayload_changelist"),
        {"action": "process_again", "_selected_action": [waiting.pk, done.pk]},
        follow=True,
    )
    said = messages_of(response)
    assert "Processed 1 payload(s) again." in said
    assert any("only received or failed ones" in message for message in said)
    waiting.refresh_from_db()
    assert waiting.status == "processed" and Alert.objects.filter(fingerprint="disk").exists()


# --- alerts ------------------------------------------------------------------------------------


def test_the_alert_list_shows_what_each_alert_is_and_became(commander_client, receive):
    receive(
        generic(
            "Disk almost full",
            "disk-fingerprint-long",
            labels={"service": "api"},
            metrics={"disk_percent": 99},
        )
    )
    receive(
        generic(
            "Disk almost full",
            "disk-fingerprint-long",
            labels={"service": "api"},
            metrics={"disk_percent": 99},
        )
    )
    alert = Alert.objects.get()
    page = body_of(commander_client.get(url("alert_changelist")))
    assert "Disk almost full" in page and "disk-fingerp" in page
    assert alert.incident.reference in page
    assert "Opened " in page and "Disk exhaustion" in page  # the disposition
    assert '<td class="field-times_received">2</td>' in page
    found = body_of(commander_client.get(url("alert_changelist"), {"q": "disk-finger"}))
    assert alert.incident.reference in found
    assert alert.incident.reference not in body_of(
        commander_client.get(url("alert_changelist"), {"q": "nothing-like-it"})
    )


def test_the_alert_page_shows_labels_values_rule_and_incident(commander_client, receive):
    receive(
        generic(
            "Disk almost full",
            "disk",
            labels={"service": "api", "host": "api-3"},
            annotations={"runbook": "https://wiki/disk"},
            metrics={"disk_percent": 99.5},
            url="javascript:alert(1)",
        )
    )
    alert = Alert.objects.get()
    page = body_of(commander_client.get(url("alert_change", alert.pk)))
    assert "<tr><th>host</th><td>api-3</td></tr>" in page
    assert "<tr><th>disk_percent</th><td>99.5</td></tr>" in page
    assert "<tr><th>runbook</th><td>https://wiki/disk</td></tr>" in page
    assert url("detectionrule_change", alert.rule_id) in page
    assert reverse("admin:incidents_incident_change", args=[alert.incident_id]) in page
    assert 'href="javascript:' not in page
    assert "raw payloads are for the security group" in page


def test_alert_of_a_confidential_incident_is_hidden_from_an_outsider_commander(
    client, django_user_model, brute_force, receive
):
    receive(generic("Disk almost full", "disk", metrics={"disk_percent": 99}))
    outsider = make_user(django_user_model, "oscar", "Incident commanders", is_staff=True)
    client.force_login(outsider)
    page = body_of(client.get(url("alert_changelist")))
    assert "Disk almost full" in page and "Failed logins" not in page
    assert brute_force.incident.reference not in page
    assert client.get(url("alert_change", brute_force.pk)).status_code == 302  # not found
    groups = body_of(client.get(url("alertgroup_changelist")))
    assert brute_force.incident.reference not in groups
    assert client.get(url("alertgroup_change", brute_force.group_id)).status_code == 302


def test_the_security_group_sees_the_confidential_alert(security_client, brute_force):
    page = body_of(security_client.get(url("alert_changelist")))
    assert "Failed logins" in page and brute_force.incident.reference in page


def test_judge_again_puts_a_waiting_alert_where_todays_rules_say(commander_client, receive):
    receive(generic("Error rate", "errors", labels={"service": "api"}, metrics={"error_rate": 0.5}))
    alert = Alert.objects.get()
    assert alert.incident is None and alert.disposition.startswith("Waiting")
    DetectionRule.objects.filter(name="High error rate").update(firing_for=None)
    response = commander_client.post(
        url("alert_changelist"),
        {"action": "judge_again", "_selected_action": [alert.pk]},
        follow=True,
    )
    assert "Judged 1 alert(s) again; 1 now belong to an incident." in messages_of(response)
    alert.refresh_from_db()
    assert alert.incident is not None and alert.incident.title == "High error rate on api"


# --- detection rules -------------------------------------------------------------------------


def rule_data(client, rule=None, **fields):
    """The rule form as the page offers it, with `fields` typed in."""
    page = client.get(url("detectionrule_change", rule.pk) if rule else url("detectionrule_add"))
    data = form_data(body_of(page), "detectionrule_form")
    data.update(fields)
    return data


def test_a_rule_is_saved_with_its_conditions_through_the_admin(
    commander_client, default_rules, api_service
):
    outage = IncidentType.objects.get(slug="outage")
    data = rule_data(
        commander_client,
        name="Checkout errors",
        priority="50",
        incident_type=str(outage.pk),
        services=[str(api_service.pk)],
        title_template="Errors on {service}",
        group_by="{service}",
        firing_for="00:05:00",
        **{
            "conditions-0-subject": "label",
            "conditions-0-key": "service",
            "conditions-0-operator": "equals",
            "conditions-0-value": "checkout",
        },
    )
    data["conditions-TOTAL_FORMS"] = "2"
    data.update(
        {
            "conditions-1-subject": "metric",
            "conditions-1-key": "error_rate",
            "conditions-1-operator": "gt",
            "conditions-1-value": "0.05",
        }
    )
    response = commander_client.post(url("detectionrule_add"), data)
    assert response.status_code == 302, body_of(response)[-3000:]
    rule = DetectionRule.objects.get(name="Checkout errors")
    assert [str(c) for c in rule.conditions.all()] == ["service = checkout", "error_rate > 0.05"]
    assert list(rule.services.all()) == [api_service]
    assert rule.firing_for == timedelta(minutes=5)
    assert rule.history.first().history_user.username == "alice"

    # Changed: one condition deleted, the other edited; the service replaces them.
    data = rule_data(commander_client, rule)
    first, second = rule.conditions.all()
    data["conditions-0-DELETE"] = "on"
    data["conditions-1-value"] = "0.2"
    response = commander_client.post(url("detectionrule_change", rule.pk), data)
    assert response.status_code == 302, body_of(response)[-3000:]
    assert [str(c) for c in rule.conditions.all()] == ["error_rate > 0.2"]


def test_a_bad_regex_is_refused_beside_its_row_keeping_what_was_typed(
    commander_client, default_rules
):
    outage = IncidentType.objects.get(slug="outage")
    data = rule_data(
        commander_client,
        name="Broken pattern",
        incident_type=str(outage.pk),
        description="Typed with care",
        **{
            "conditions-0-subject": "label",
            "conditions-0-key": "instance",
            "conditions-0-operator": "matches",
            "conditions-0-value": "api-(",
        },
    )
    response = commander_client.post(url("detectionrule_add"), data)
    assert response.status_code == 200
    page = body_of(response)
    assert "Condition 1: not a regular expression" in page
    assert (
        'value="api-("' in page and 'value="Broken pattern"' in page and "Typed with care" in page
    )
    assert not DetectionRule.objects.filter(name="Broken pattern").exists()


def test_a_rule_the_service_refuses_shows_the_form_again_as_typed(commander_client, default_rules):
    outage = IncidentType.objects.get(slug="outage")
    data = rule_data(
        commander_client,
        name="Odd title",
        incident_type=str(outage.pk),
        title_template="Errors on {service",
        **{"conditions-0-key": "service", "conditions-0-operator": "exists"},
    )
    response = commander_client.post(url("detectionrule_add"), data)
    assert response.status_code == 200
    page = body_of(response)
    assert "Use {name} placeholders only" in page
    assert 'value="Errors on {service"' in page and 'value="Odd title"' in page
    assert not DetectionRule.objects.filter(name="Odd title").exists()
    assert not RuleCondition.objects.filter(key="service", operator="exists").exists()


def test_the_rule_list_counts_matches_and_false_positives_in_a_few_queries(
    commander_client, receive
):
    for n in range(3):
        receive(
            generic(
                f"Disk {n}",
                f"disk-{n}",
                labels={"service": f"s{n}"},
                metrics={"disk_percent": 99},
            )
        )
    rule = DetectionRule.objects.get(name="Disk exhaustion")
    assert rule.alerts.count() == 3
    declined = Alert.objects.get(fingerprint="disk-0").incident
    incident_services.incident_decline(incident=declined, reason="Noise", source=Source.ADMIN)
    with CaptureQueriesContext(connection) as captured:
        response = commander_client.get(url("detectionrule_changelist"))
    page = body_of(response)
    row = page[page.index(">Disk exhaustion<") :].split("</tr>")[0]
    assert "disk_percent &gt; 95" in row
    assert f'?rule__id__exact={rule.pk}">3</a>' in row
    assert '<td class="field-false_positives">1</td>' in row
    assert len(captured) <= 12, [q["sql"][:120] for q in captured]
    assert "Try the rules on a payload" in page


# --- trying the rules -----------------------------------------------------------------------


def counts():
    return [
        model.objects.count()
        for model in (Alert, AlertPayload, AlertGroup, Incident, TimelineEvent, DetectionRule)
    ]


def test_try_a_rule_offers_an_example_payload(commander_client, default_rules):
    page = body_of(commander_client.get(url("detectionrule_try")))
    assert "HighErrorRate" in page and "&quot;version&quot;: &quot;4&quot;" in page
    generic_page = body_of(commander_client.get(url("detectionrule_try"), {"kind": "generic"}))
    assert "disk_percent" in generic_page


def test_try_a_rule_shows_why_each_rule_matches_or_not_and_writes_nothing(
    commander_client, default_rules, api_service
):
    before = counts()
    payload = [
        generic(
            "Disk almost full", "disk", labels={"service": "api"}, metrics={"disk_percent": 97}
        ),
        generic("Watchdog", "watchdog"),
    ]
    response = commander_client.post(
        url("detectionrule_try"), {"kind": "generic", "payload": json.dumps(payload)}
    )
    assert response.status_code == 200
    page = body_of(response)
    disk = page[page.index('id="alert-1"') : page.index('id="alert-2"')]
    assert "✓ matches — wins" in disk and ">Disk exhaustion<" in disk
    assert "disk_percent is 97, so not cpu_percent" not in disk  # reasons name each rule's own
    assert "no metric value cpu_percent" in disk
    assert "alertname is &#x27;Disk almost full&#x27;, not &#x27;Watchdog&#x27;" in disk
    assert "an earlier rule takes the alert" in disk  # "Everything else" would match too
    assert 'class="rendered-title">Disk exhausted on api<' in disk
    assert f"rule-{DetectionRule.objects.get(name='Disk exhaustion').pk}:Disk almost full" in disk
    assert "no active silence holds it" in disk
    watchdog = page[page.index('id="alert-2"') :]
    assert "Ignored as noise by rule “Watchdog (always firing)”." in watchdog
    assert counts() == before


def test_try_a_rule_says_a_silence_would_hold_the_alert(
    commander_client, default_rules, api_service
):
    silence_save(
        ends_at=timezone.now() + timedelta(hours=1), comment="Disk swap", services=[api_service]
    )
    payload = generic(
        "Disk almost full", "disk", labels={"service": "api"}, metrics={"disk_percent": 97}
    )
    page = body_of(
        commander_client.post(
            url("detectionrule_try"), {"kind": "generic", "payload": json.dumps(payload)}
        )
    )
    assert "Held back by the silence “Disk swap”" in page


def test_try_a_rule_explains_a_payload_it_cannot_read(commander_client, default_rules):
    before = counts()
    response = commander_client.post(
        url("detectionrule_try"), {"kind": "alertmanager", "payload": "{oops"}
    )
    page = body_of(response)
    assert "The body is not JSON" in page and "{oops" in page
    response = commander_client.post(
        url("detectionrule_try"),
        {
            "kind": "alertmanager",
            "payload": json.dumps({"version": "4", "alerts": [{"status": "on"}]}),
        },
    )
    assert "alerts[0].status must be &quot;firing&quot; or &quot;resolved&quot;." in body_of(
        response
    )
    assert counts() == before


def test_try_a_rule_is_for_those_who_may_see_rules(client, django_user_model, default_rules):
    staff = make_user(django_user_model, "sam", is_staff=True)
    client.force_login(staff)
    assert client.get(url("detectionrule_try")).status_code == 403


# --- silences ----------------------------------------------------------------------------------


def test_a_silence_is_saved_with_its_matchers_and_expired_from_the_list(
    commander_client, api_service
):
    page = body_of(commander_client.get(url("silence_add")))
    data = form_data(page, "silence_form")
    now = timezone.localtime()
    later = now + timedelta(hours=2)
    data.update(
        {
            "comment": "Database failover drill",
            "starts_at_0": now.strftime("%Y-%m-%d"),
            "starts_at_1": now.strftime("%H:%M:%S"),
            "ends_at_0": later.strftime("%Y-%m-%d"),
            "ends_at_1": later.strftime("%H:%M:%S"),
            "matchers-0-key": "alertname",
            "matchers-0-operator": "matches",
            "matchers-0-value": "DB.*",
        }
    )
    response = commander_client.post(url("silence_add"), data)
    assert response.status_code == 302, body_of(response)[-3000:]
    silence = Silence.objects.get()
    assert [str(m) for m in silence.matchers.all()] == ["alertname matches regex DB.*"]
    assert silence.created_by.username == "alice"
    assert "active" in body_of(commander_client.get(url("silence_changelist")))

    response = commander_client.post(
        url("silence_changelist"),
        {"action": "expire_now", "_selected_action": [silence.pk]},
        follow=True,
    )
    assert "Expired 1 silence(s)." in messages_of(response)
    silence.refresh_from_db()
    assert not silence.is_active()
    again = commander_client.post(
        url("silence_changelist"),
        {"action": "expire_now", "_selected_action": [silence.pk]},
        follow=True,
    )
    assert any("has ended already" in message for message in messages_of(again))


def test_a_silence_for_everything_is_refused_keeping_what_was_typed(commander_client):
    data = form_data(body_of(commander_client.get(url("silence_add"))), "silence_form")
    later = timezone.localtime() + timedelta(hours=2)
    data.update(
        {
            "comment": "Silence it all",
            "ends_at_0": later.strftime("%Y-%m-%d"),
            "ends_at_1": later.strftime("%H:%M:%S"),
        }
    )
    response = commander_client.post(url("silence_add"), data)
    assert response.status_code == 200
    page = body_of(response)
    assert "Name the services or label matchers it silences" in page
    assert 'value="Silence it all"' in page
    assert not Silence.objects.exists()


# --- on the incident admin ------------------------------------------------------------------


def test_the_incident_list_says_how_many_alerts_fire_in_a_fixed_number_of_queries(
    commander_client, receive, declare
):
    def listing():
        commander_client.get(reverse("admin:incidents_incident_changelist"))  # banners cached
        with CaptureQueriesContext(connection) as captured:
            response = commander_client.get(reverse("admin:incidents_incident_changelist"))
        assert response.status_code == 200
        return len(captured), body_of(response)

    receive(
        generic("Disk full a", "a1", labels={"alertname": "DiskA"}, metrics={"disk_percent": 99}),
        generic(
            "Disk full a",
            "a2",
            labels={"alertname": "DiskA", "host": "2"},
            metrics={"disk_percent": 99},
        ),
    )
    few, _ = listing()
    for n in range(6):
        receive(
            generic(
                f"Disk full {n}",
                f"b{n}",
                labels={"alertname": f"Disk{n}"},
                metrics={"disk_percent": 99},
            )
        )
    resolved = Alert.objects.get(fingerprint="b0")
    receive(generic("Disk full 0", "b0", status="resolved", labels={"alertname": "Disk0"}))
    quiet = declare(title="Declared by hand")
    many, page = listing()
    assert many == few, "a query per incident"
    assert 'column-alerts_column"' in page
    incident_a = Alert.objects.get(fingerprint="a1").incident
    row_a = page[page.index(incident_a.reference) :].split("</tr>")[0]
    assert "2 firing" in row_a
    row_resolved = page[page.index(resolved.incident.reference) :].split("</tr>")[0]
    assert "all resolved" in row_resolved
    row_quiet = page[page.index(quiet.reference) :].split("</tr>")[0]
    assert '<td class="field-alerts_column">—</td>' in row_quiet


def test_the_incident_page_lists_its_alerts_and_says_when_all_resolved(commander_client, receive):
    receive(generic("Disk full", "d1", labels={"alertname": "Disk"}, metrics={"disk_percent": 99}))
    receive(
        generic(
            "Disk full",
            "d2",
            labels={"alertname": "Disk", "host": "2"},
            metrics={"disk_percent": 98},
        )
    )
    alert = Alert.objects.get(fingerprint="d1")
    incident_page = reverse("admin:incidents_incident_change", args=[alert.incident_id])
    page = body_of(commander_client.get(incident_page))
    assert "<h2>Alerts</h2>" in page and "2 of 2 alerts firing." in page
    assert url("alert_change", alert.pk) in page
    receive(
        generic("Disk full", "d1", status="resolved", labels={"alertname": "Disk"}),
        generic("Disk full", "d2", status="resolved", labels={"alertname": "Disk", "host": "2"}),
    )
    page = body_of(commander_client.get(incident_page))
    assert "All alerts resolved" in page


def test_an_incident_without_alerts_shows_no_alerts_panel(commander_client, declare):
    incident = declare()
    page = body_of(
        commander_client.get(reverse("admin:incidents_incident_change", args=[incident.pk]))
    )
    assert "<h2>Alerts</h2>" not in page


def test_default_groups_can_use_the_alerts_admin():
    commanders = Group.objects.get(name="Incident commanders")
    codenames = set(commanders.permissions.values_list("codename", flat=True))
    assert {"view_alert", "change_detectionrule", "change_silence"} <= codenames
    assert "view_alertpayload" not in codenames
