"""Default policy rows, from the reference procedures; loaded by a data migration."""

from datetime import timedelta

SEVERITIES = [
    {
        "key": "SEV1",
        "label": "Critical",
        "rank": 1,
        "aliases": ["critical"],
        "color": "#b91c1c",
        "description": "Whole service down, data lost or exposed, or an active security breach.",
        "acknowledge_within": timedelta(minutes=15),
        "update_every": timedelta(minutes=30),
        "escalate_after": timedelta(minutes=15),
        "response_in_business_hours": False,
        "postmortem_required": True,
        "postmortem_due_days": 7,
    },
    {
        "key": "SEV2",
        "label": "High",
        "rank": 2,
        "aliases": ["high"],
        "color": "#c2410c",
        "description": "A major feature unavailable or performance badly degraded for many users.",
        "acknowledge_within": timedelta(hours=1),
        "update_every": timedelta(hours=2),
        "escalate_after": timedelta(hours=1),
        "response_in_business_hours": False,
        "postmortem_required": True,
        "postmortem_due_days": 7,
    },
    {
        "key": "SEV3",
        "label": "Medium",
        "rank": 3,
        "aliases": ["medium"],
        "color": "#a16207",
        "description": "A minor feature broken or a moderate slowdown; a workaround exists.",
        "acknowledge_within": timedelta(hours=4),
        "update_every": timedelta(days=1),
        "escalate_after": timedelta(hours=4),
        "response_in_business_hours": True,
        "postmortem_required": False,
        "postmortem_due_days": None,
    },
    {
        "key": "SEV4",
        "label": "Low",
        "rank": 4,
        "aliases": ["low"],
        "color": "#2563eb",
        "description": "Cosmetic problems and small bugs with little effect on users.",
        "acknowledge_within": timedelta(days=5),
        "update_every": timedelta(weeks=1),
        "escalate_after": timedelta(days=2),
        "response_in_business_hours": True,
        "postmortem_required": False,
        "postmortem_due_days": None,
    },
]

INCIDENT_TYPES = [
    {
        "slug": "outage",
        "name": "Outage",
        "description": "A service or feature is unavailable or failing for its users.",
        "confidential_by_default": False,
    },
    {
        "slug": "security",
        "name": "Security",
        "description": "Suspected or confirmed breach, exploitation or exposure of data.",
        "confidential_by_default": True,
    },
    {
        "slug": "performance",
        "name": "Performance",
        "description": "Latency, throughput or resource use outside normal bounds.",
        "confidential_by_default": False,
    },
    {
        "slug": "data",
        "name": "Data",
        "description": "Data loss, corruption, inconsistency or a failed backup.",
        "confidential_by_default": False,
    },
    {
        "slug": "integration",
        "name": "Integration",
        "description": "A third-party provider or internal dependency misbehaving.",
        "confidential_by_default": False,
    },
]


# The communication matrix of the reference procedures: who hears about which severities.
STAKEHOLDER_GROUPS = [
    # slug, name, severities, via status page, may hear of confidential incidents
    ("executive-team", "Executive team", ["SEV1", "SEV2"], False, False),
    ("engineering-leads", "Engineering leads", ["SEV1", "SEV2", "SEV3"], False, False),
    ("on-call-engineers", "On-call engineers", ["SEV1", "SEV2", "SEV3", "SEV4"], False, False),
    ("customer-support", "Customer support", ["SEV1", "SEV2", "SEV3"], False, False),
    ("external-customers", "External customers", ["SEV1", "SEV2"], True, False),
    ("security-team", "Security team", ["SEV1", "SEV2", "SEV3", "SEV4"], False, True),
    ("legal-compliance", "Legal and compliance", ["SEV1"], False, True),
]

MESSAGE_TEMPLATES = [
    {
        "slug": "incident-notification",
        "name": "Incident notification",
        "audience": "internal",
        "subject": "[{{ incident.severity.key }}] {{ incident.reference }}: {{ incident.title }}",
        "body": (
            "Incident: {{ incident.reference }} — {{ incident.title }}\n"
            "Severity: {{ incident.severity.key }} {{ incident.severity.label }}\n"
            "Status: {{ incident.get_status_display }}\n"
            "Impact: {{ incident.customer_impact|default:'being assessed' }}\n"
            "Started: {{ incident.started_at|date:'Y-m-d H:i' }} UTC\n"
            "{% if next_update_at %}Next update by: {{ next_update_at|date:'Y-m-d H:i' }} UTC\n"
            "{% endif %}\n{{ message }}"
        ),
    },
    {
        "slug": "critical-incident-notification",
        "name": "Critical incident notification",
        "audience": "internal",
        "subject": "CRITICAL {{ incident.reference }}: {{ incident.title }}",
        "body": (
            "A critical incident is in progress and all hands are on it.\n\n"
            "Incident: {{ incident.reference }} — {{ incident.title }}\n"
            "Status: {{ incident.get_status_display }}\n"
            "Affected services: {{ services|join:', '|default:'not yet known' }}\n"
            "Users affected: {{ incident.estimated_users_affected|default:'unknown' }}\n"
            "Commander: {{ commander|default:'not yet assigned' }}\n"
            "{% if next_update_at %}Next update by: {{ next_update_at|date:'H:i' }} UTC\n"
            "{% endif %}\n{{ message }}"
        ),
    },
    {
        "slug": "customer-update",
        "name": "Customer update (status page)",
        "audience": "public",
        "subject": "{{ incident.title }} — {{ incident.get_status_display }}",
        "body": (
            "{% if incident.status == 'resolved' %}This issue is resolved and we are "
            "monitoring to make sure it stays that way.{% else %}We are aware of a problem "
            "affecting {{ services|join:', '|default:'some of our services' }} and are "
            "working on it.{% endif %}"
            "{% if next_update_at %} Next update by {{ next_update_at|date:'H:i' }} UTC."
            "{% endif %}"
        ),
    },
]


def load_communication_defaults(apps) -> None:
    """Add the default stakeholder groups and message templates that are missing."""
    Severity = apps.get_model("incidents", "Severity")
    StakeholderGroup = apps.get_model("incidents", "StakeholderGroup")
    MessageTemplate = apps.get_model("incidents", "MessageTemplate")
    for slug, name, keys, via_status_page, confidential_ok in STAKEHOLDER_GROUPS:
        group, created = StakeholderGroup.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "via_status_page": via_status_page,
                "confidential_ok": confidential_ok,
            },
        )
        if created:
            group.severities.set(Severity.objects.filter(key__in=keys))
    for row in MESSAGE_TEMPLATES:
        MessageTemplate.objects.get_or_create(slug=row["slug"], defaults=row)


def load_defaults(severity_model, incident_type_model) -> list:
    """Add the default rows that are missing; never overwrite a commander's edits.
    Return the rows created."""
    created = []
    for model, key, rows in (
        (severity_model, "key", SEVERITIES),
        (incident_type_model, "slug", INCIDENT_TYPES),
    ):
        for row in rows:
            obj, was_created = model.objects.get_or_create(**{key: row[key]}, defaults=row)
            if was_created:
                created.append(obj)
    return created
