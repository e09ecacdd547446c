"""Demo alerts: an Alertmanager source and what monitoring says right now — a triage
candidate with two alerts, a known-noise Watchdog, a maintenance silence holding back
a search alert, and an error-rate alert waiting out its five minutes."""

import json
from datetime import timedelta

from django.utils import timezone

from alerts import services
from alerts.models import AlertSource
from incidents.models import Service


def _alert(labels, annotations, started_minutes_ago, now):
    return {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": (now - timedelta(minutes=started_minutes_ago)).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com/graph",
    }


def seed_alerts(stdout) -> None:
    if AlertSource.objects.exists():
        return
    now = timezone.now()
    source, secret = services.source_create(
        name="prometheus",
        kind="alertmanager",
        description="The production Alertmanager (demo).",
        heartbeat_minutes=60,
    )
    services.silence_save(
        starts_at=now - timedelta(minutes=30),
        ends_at=now + timedelta(hours=2),
        comment="Search cluster upgrade (demo maintenance window)",
        services=list(Service.objects.filter(slug="search")),
    )
    error = {"summary": "Checkout answers 5xx to 18 % of requests", "error_rate": "0.18"}
    alerts = [
        _alert(
            {
                "alertname": "HighErrorRate",
                "service": "checkout",
                "instance": "checkout-1",
                "severity": "critical",
            },
            error,
            12,
            now,
        ),
        _alert(
            {
                "alertname": "HighErrorRate",
                "service": "checkout",
                "instance": "checkout-2",
                "severity": "critical",
            },
            error,
            11,
            now,
        ),
        _alert(
            {"alertname": "Watchdog", "severity": "none"},
            {"summary": "The alerting pipeline is alive"},
            600,
            now,
        ),
        _alert(
            {
                "alertname": "HighErrorRate",
                "service": "search",
                "instance": "search-3",
                "severity": "critical",
            },
            {"summary": "Search errors during the upgrade", "error_rate": "0.4"},
            20,
            now,
        ),
        _alert(
            {
                "alertname": "HighErrorRate",
                "service": "api",
                "instance": "api-7",
                "severity": "warning",
            },
            {"summary": "API error rate rising", "error_rate": "0.12"},
            1,
            now,
        ),
    ]
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "sitrep",
        "groupKey": "{}:{}",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com",
        "alerts": alerts,
    }
    services.payload_receive(
        source=source, body=json.dumps(body).encode(), content_type="application/json"
    )
    stdout.write(
        "Demo alert source prometheus: post Alertmanager webhooks to /api/v1/alerts/"
        f"alertmanager/ with 'Authorization: Bearer {secret}'."
    )
