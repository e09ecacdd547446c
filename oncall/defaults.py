"""The reference documents' on-call policy, loaded by a migration: which roles declaring
each severity staffs, when an acknowledged incident counts as stuck, and the default
escalation policy (the core's ladder, if one was set up, else the reference's L1-L4)."""

from datetime import timedelta

SECURITY_TYPES = ["security", "data"]

# severity: [(role, only for these incident types; empty: every type)]
ACTIVATION = {
    "SEV1": [
        ("commander", []),
        ("technical_lead", []),
        ("communications_lead", []),
        ("scribe", []),
        ("security_lead", SECURITY_TYPES),
    ],
    "SEV2": [
        ("commander", []),
        ("technical_lead", []),
        ("communications_lead", []),
        ("scribe", []),
        ("security_lead", SECURITY_TYPES),
    ],
    "SEV3": [("technical_lead", []), ("scribe", [])],
    "SEV4": [("technical_lead", []), ("scribe", [])],
}

# severity: (no status update for, not mitigated within): twice the update cadence, and
# the time by which the reference expects a critical or high incident contained.
STUCK = {
    "SEV1": (timedelta(hours=1), timedelta(hours=2)),
    "SEV2": (timedelta(hours=4), timedelta(hours=8)),
}

# The reference's escalation for critical issues: the on-call engineer, then the team
# lead after 15 minutes, the engineering manager after 30, the CTO/VP after an hour.
REFERENCE_LEVELS = [
    (1, "On-call engineer", timedelta(0), True),
    (2, "Team lead", timedelta(minutes=15), False),
    (3, "Engineering manager", timedelta(minutes=30), False),
    (4, "CTO / VP Engineering", timedelta(hours=1), False),
]


def load_defaults(apps) -> None:
    """Add what is missing: activation and stuck rules, and a default policy."""
    Severity = apps.get_model("incidents", "Severity")
    IncidentType = apps.get_model("incidents", "IncidentType")
    ActivationRule = apps.get_model("oncall", "ActivationRule")
    StuckRule = apps.get_model("oncall", "StuckRule")
    severities = {severity.key: severity for severity in Severity.objects.all()}
    for key, rows in ACTIVATION.items():
        if key not in severities:
            continue
        for role, types in rows:
            rule, created = ActivationRule.objects.get_or_create(
                severity=severities[key], role=role
            )
            if created and types:
                rule.incident_types.set(IncidentType.objects.filter(slug__in=types))
    for key, (no_update_for, not_mitigated_in) in STUCK.items():
        if key in severities:
            StuckRule.objects.get_or_create(
                severity=severities[key],
                defaults={"no_update_for": no_update_for, "not_mitigated_in": not_mitigated_in},
            )
    load_default_policy(apps)


def load_default_policy(apps) -> None:
    """Make the default escalation policy if there is none: from the core's ladder, so
    the levels set up there keep paging the same people and channels at the same times
    (no delay: the severity's timing, as the ladder did), else the reference's levels."""
    EscalationPolicy = apps.get_model("oncall", "EscalationPolicy")
    PolicyLevel = apps.get_model("oncall", "PolicyLevel")
    EscalationLevel = apps.get_model("incidents", "EscalationLevel")
    if EscalationPolicy.objects.filter(is_default=True).exists():
        return
    ladder = list(EscalationLevel.objects.prefetch_related("members", "targets"))
    # The core seeds an empty first level; only a ladder someone staffed is worth keeping.
    if any(rung.members.all() or rung.targets.all() for rung in ladder):
        policy = EscalationPolicy.objects.create(
            name="Escalation ladder",
            description="The levels of the escalation ladder, moved here when on-call came.",
            is_default=True,
        )
        for rung in ladder:
            level = PolicyLevel.objects.create(
                policy=policy, number=rung.level, name=rung.name, delay=None
            )
            level.users.set(rung.members.all())
            level.targets.set(rung.targets.all())
        return
    policy = EscalationPolicy.objects.create(
        name="Reference escalation",
        description="On-call engineer, then team lead after 15 min, engineering manager "
        "after 30 min, CTO/VP after 1 h. Give levels 2-4 their people.",
        is_default=True,
    )
    for number, name, delay, incident_team in REFERENCE_LEVELS:
        PolicyLevel.objects.create(
            policy=policy, number=number, name=name, delay=delay, incident_team=incident_team
        )
