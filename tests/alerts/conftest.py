"""Fixtures of the alerts tests."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.defaults import load_rules
from alerts.services import source_create


@pytest.fixture
def default_rules(default_policy):
    """The seeded detection rules (a test that flushed the database took them along)."""
    load_rules(apps)


# --- intake: sources, posting, realistic payloads ----------------------------------------


@pytest.fixture
def make_source(db):
    """Create an alert source through the service; return (source, secret)."""

    def _make(name="prometheus", kind="alertmanager", **options):
        return source_create(name=name, kind=kind, **options)

    return _make


@pytest.fixture
def prometheus(make_source, default_rules):
    """An Alertmanager source, with the seeded rules in place: (source, secret)."""
    return make_source("prometheus", "alertmanager")


@pytest.fixture
def post_alerts():
    """POST a body (a dict/list is JSON-encoded; bytes and str go as they are) to an
    intake endpoint, with the bearer secret if given; return the response."""

    def _post(kind, body, *, secret=None, query="", content_type="application/json", **headers):
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        if secret is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return APIClient().generic(
            "POST", f"/api/v1/alerts/{kind}/{query}", body, content_type, **headers
        )

    return _post


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def am_alert():
    """One alert as Alertmanager's webhook (version 4) carries it."""

    def _alert(
        alertname="HighErrorRate",
        status="firing",
        labels=None,
        annotations=None,
        fingerprint=None,
        starts_at=None,
        ends_at=None,
    ):
        labels = {"alertname": alertname, "instance": "api-1:9100", "job": "api", **(labels or {})}
        alert = {
            "status": status,
            "labels": labels,
            "annotations": {
                "summary": f"{alertname} on {labels['instance']}",
                **(annotations or {}),
            },
            "startsAt": _rfc3339(starts_at or timezone.now() - timedelta(minutes=1)),
            "endsAt": _rfc3339(ends_at) if ends_at else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28errors%5B5m%5D%29",
        }
        if fingerprint is not None:
            alert["fingerprint"] = fingerprint
        return alert

    return _alert


@pytest.fixture
def am_payload():
    """Alertmanager's webhook body around the given alerts."""

    def _payload(*alerts, receiver="sitrep"):
        common = dict(alerts[0]["labels"]) if alerts else {}
        for alert in alerts[1:]:
            common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
        group_key = '{}:{alertname="' + common.get("alertname", "") + '"}'
        return {
            "version": "4",
            "groupKey": group_key,
            "truncatedAlerts": 0,
            "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "receiver": receiver,
            "groupLabels": {"alertname": common.get("alertname", "")},
            "commonLabels": common,
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts),
        }

    return _payload
