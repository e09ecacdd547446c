"""Demo on-call: a central incident-response team (commanders, communications, scribes,
security) and three service teams with their rotas, an override, people's contact methods
(console email, and a Slack-compatible webhook and texts that the local sink of `make
run` prints), paging rules, the escalation policy's people, and a live SEV1 that pages
the rota and escalates while nobody acknowledges it."""

from datetime import time, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents import services
from incidents.models import IncidentType, Service, Severity, Source
from oncall.models import (
    ContactMethod,
    EscalationPolicy,
    OnCallRole,
    Override,
    PagingRule,
    Rotation,
    RotationMember,
    Team,
    Urgency,
)

SINK = "http://127.0.0.1:8025"
ZONE = "Europe/London"

# name, slug, services, members, default team
TEAMS = [
    (
        "Incident response",
        "incident-response",
        [],
        ["alice", "ravi", "chen", "dana", "carol", "frank"],
        True,
    ),
    ("Platform", "platform", ["api", "database", "cdn"], ["bob", "chen", "erik"], False),
    ("Payments", "payments", ["checkout", "payments"], ["dana", "erik", "bob"], False),
    ("Identity", "identity", ["auth", "web"], ["bob", "dana"], False),
]

# team slug, name, role, members in order, period, extra fields
ROTATIONS = [
    ("incident-response", "Commanders", OnCallRole.COMMANDER, ["alice", "ravi"], "weekly", {}),
    (
        "incident-response",
        "Communications",
        OnCallRole.COMMUNICATIONS_LEAD,
        ["ravi", "alice"],
        "weekly",
        {},
    ),
    ("incident-response", "Scribes", OnCallRole.SCRIBE, ["chen", "dana"], "daily", {}),
    (
        "incident-response",
        "Security leads",
        OnCallRole.SECURITY_LEAD,
        ["carol", "frank"],
        "weekly",
        {},
    ),
    # For incidents on services no team owns (search, notifications…).
    (
        "incident-response",
        "Duty technical leads",
        OnCallRole.TECHNICAL_LEAD,
        ["chen", "dana"],
        "weekly",
        {},
    ),
    ("platform", "Platform primary", OnCallRole.RESPONDER, ["bob", "chen", "erik"], "weekly", {}),
    ("platform", "Platform tech leads", OnCallRole.TECHNICAL_LEAD, ["erik", "bob"], "weekly", {}),
    # Follow-the-sun: overnight in London, Chen (in Singapore) takes the Platform pager.
    (
        "platform",
        "Platform overnight (APAC)",
        OnCallRole.RESPONDER,
        ["chen"],
        "weekly",
        {"layer": 2, "window_starts": time(22, 0), "window_ends": time(6, 0)},
    ),
    ("payments", "Payments primary", OnCallRole.RESPONDER, ["dana", "erik"], "weekly", {}),
    ("payments", "Payments tech leads", OnCallRole.TECHNICAL_LEAD, ["dana", "erik"], "weekly", {}),
    ("identity", "Identity primary", OnCallRole.RESPONDER, ["bob", "dana"], "weekly", {}),
    ("identity", "Identity tech leads", OnCallRole.TECHNICAL_LEAD, ["bob", "dana"], "weekly", {}),
]

# Who escalation reaches above the on-call engineer (the reference's L2-L4).
LEVEL_PEOPLE = {2: ["erik"], 3: ["ravi"], 4: ["grace"]}

PHONES = {"alice": "+447700900001", "bob": "+447700900002", "erik": "+447700900005"}


def seed_oncall(stdout) -> None:
    if Team.objects.exists():
        return
    users = {user.username: user for user in get_user_model().objects.all()}
    now = timezone.now()
    # The rotas started last Monday, so this week's roster shows a handover or two.
    monday = (now - timedelta(days=now.weekday())).date()
    teams = {}
    for name, slug, service_slugs, members, is_default in TEAMS:
        team = Team.objects.create(name=name, slug=slug, is_default=is_default)
        team.members.set(users[username] for username in members)
        team.services.set(Service.objects.filter(slug__in=service_slugs))
        teams[slug] = team
    rotations = {}
    for team_slug, name, role, members, period, extra in ROTATIONS:
        rotation = Rotation.objects.create(
            team=teams[team_slug],
            name=name,
            role=role,
            time_zone=ZONE,
            starts_on=monday - timedelta(days=7),
            handoff_time=time(9, 0),
            period=period,
            **extra,
        )
        for position, username in enumerate(members):
            RotationMember.objects.create(
                rotation=rotation, user=users[username], position=position
            )
        rotations[name] = rotation
    # A swap: Chen covers Bob's Platform shift tomorrow afternoon.
    tomorrow = now.replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)
    Override.objects.create(
        rotation=rotations["Platform primary"],
        user=users["chen"],
        covers=users["bob"],
        starts_at=tomorrow,
        ends_at=tomorrow + timedelta(hours=6),
        reason="Bob at the dentist (demo)",
    )
    _contacts(users, now)
    policy = EscalationPolicy.objects.filter(is_default=True).first()
    if policy is not None:
        for level in policy.levels.all():
            level.users.set(users[name] for name in LEVEL_PEOPLE.get(level.number, []))
    _live_sev1(now)
    stdout.write(
        "On-call: 4 teams, 12 rotations; a live SEV1 paged the rota (watch `make run`'s "
        "console email and the sink's output), and escalates until someone acknowledges it."
    )


def _contacts(users, now) -> None:
    # Responders, and the stakeholders escalation reaches (an executive at the top level,
    # who pages without admin access).
    escalated = {name for names in LEVEL_PEOPLE.values() for name in names}
    for username, user in users.items():
        if not (user.is_staff or username in escalated):
            continue
        email = ContactMethod.objects.create(
            user=user, kind="email", address=user.email, label="work email", verified_at=now
        )
        PagingRule.objects.create(user=user, urgency=Urgency.LOW, contact_method=email)
        PagingRule.objects.create(
            user=user,
            urgency=Urgency.HIGH,
            contact_method=email,
            repeat_every=timedelta(minutes=10),
            repeat_times=2,
        )
        if username in PHONES:
            slack = ContactMethod.objects.create(
                user=user,
                kind="slack",
                address=f"{SINK}/slack/{username}",
                label="Slack DM (demo sink)",
                verified_at=now,
            )
            text = ContactMethod.objects.create(
                user=user, kind="sms", address=PHONES[username], label="mobile", verified_at=now
            )
            PagingRule.objects.create(user=user, urgency=Urgency.HIGH, contact_method=slack)
            PagingRule.objects.create(
                user=user,
                urgency=Urgency.HIGH,
                contact_method=text,
                delay=timedelta(minutes=5),
                repeat_every=timedelta(minutes=10),
                repeat_times=3,
            )


def _live_sev1(now) -> None:
    """Declared 20 minutes ago and not acknowledged: the rota is paged now, and the
    escalation policy's next levels are due at the worker's first round."""
    services.incident_declare(
        title="Card payments failing at checkout",
        summary="Checkout answers 502 for card payments; wallets still work.",
        severity=Severity.objects.get(key="SEV1"),
        incident_type=IncidentType.objects.get(slug="outage"),
        services=list(Service.objects.filter(slug__in=["checkout", "payments"])),
        customer_impact="Customers cannot pay by card.",
        declared_at=now - timedelta(minutes=20),
        source=Source.SYSTEM,
    )
