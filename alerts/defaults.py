"""The detection rules Sitrep starts with, from the reference documents' detectors and
alert thresholds. Loaded once by a data migration; commanders edit or delete them."""

from datetime import timedelta

RULES = [
    {
        "name": "Heartbeat missing",
        "description": "A source Sitrep expects to hear from has gone quiet: monitoring is blind.",
        "priority": 10,
        "conditions": [("label", "alertname", "equals", "SitrepHeartbeatMissing")],
        "severity": "SEV3",
        "incident_type": "integration",
        "group_by": "{alertname}/{source}",
        "title_template": "Monitoring source {source} has gone quiet",
    },
    {
        "name": "Watchdog (always firing)",
        "description": "Prometheus' always-firing Watchdog alert proves the pipeline works; "
        "it is not an incident.",
        "priority": 20,
        "conditions": [("label", "alertname", "equals", "Watchdog")],
        "action": "ignore",
    },
    {
        "name": "Complete outage: no healthy nodes",
        "priority": 100,
        "conditions": [("metric", "healthy_nodes", "eq", "0")],
        "severity": "SEV1",
        "incident_type": "outage",
        "title_template": "Complete outage: {service} has no healthy nodes",
    },
    {
        "name": "Brute force: failed logins",
        "description": "More than 100 failed logins in 5 minutes; security incidents are "
        "confidential.",
        "priority": 110,
        "conditions": [("metric", "failed_logins_5m", "gt", "100")],
        "severity": "SEV2",
        "incident_type": "security",
        "title_template": "Possible brute-force attack on {service}",
    },
    {
        "name": "High error rate",
        "description": "Error rate above 10 % for 5 minutes.",
        "priority": 120,
        "conditions": [("metric", "error_rate", "gt", "0.1")],
        "severity": "SEV2",
        "incident_type": "outage",
        "firing_for": timedelta(minutes=5),
        "title_template": "High error rate on {service}",
    },
    {
        "name": "Extreme latency",
        "description": "p99 latency above 10 seconds.",
        "priority": 130,
        "conditions": [("metric", "p99_latency_seconds", "gt", "10")],
        "severity": "SEV2",
        "incident_type": "performance",
        "title_template": "Extreme latency on {service}",
    },
    *[
        {
            "name": f"{label} exhaustion",
            "description": f"{label} use above 95 %.",
            "priority": 140,
            "conditions": [("metric", f"{resource}_percent", "gt", "95")],
            "severity": "SEV2",
            "incident_type": "performance",
            "title_template": f"{label} exhausted on {{service}}",
        }
        for resource, label in (("cpu", "CPU"), ("memory", "Memory"), ("disk", "Disk"))
    ],
    {
        "name": "Critical alerts",
        "description": "Any other alert labelled severity=critical.",
        "priority": 500,
        "conditions": [("label", "severity", "matches", "critical|page")],
        "severity": "SEV2",
        "incident_type": "outage",
    },
    {
        "name": "Everything else",
        "description": "Any other alert: a triage candidate rated from its severity label.",
        "priority": 1000,
        "conditions": [],
        "incident_type": "outage",
    },
]


def load_rules(apps) -> None:
    """Add the default rules that are missing (by name)."""
    DetectionRule = apps.get_model("alerts", "DetectionRule")
    RuleCondition = apps.get_model("alerts", "RuleCondition")
    Severity = apps.get_model("incidents", "Severity")
    IncidentType = apps.get_model("incidents", "IncidentType")
    for row in RULES:
        row = dict(row)
        conditions = row.pop("conditions")
        severity = row.pop("severity", None)
        incident_type = row.pop("incident_type", None)
        rule, created = DetectionRule.objects.get_or_create(
            name=row.pop("name"),
            defaults={
                **row,
                "severity": Severity.objects.filter(key=severity).first() if severity else None,
                "incident_type": IncidentType.objects.filter(slug=incident_type).first()
                if incident_type
                else None,
            },
        )
        if created:
            for subject, key, operator, value in conditions:
                RuleCondition.objects.create(
                    rule=rule, subject=subject, key=key, operator=operator, value=value
                )
