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
        "color": "#ea580c",
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
        "color": "#ca8a04",
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
