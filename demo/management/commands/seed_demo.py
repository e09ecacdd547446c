"""A believable organisation to explore: people, services, ~40 incidents of 90 days,
the post-mortems of the serious ones and their action items."""

import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from demo.alerts import seed_alerts
from demo.forensics import seed_forensics
from demo.oncall import seed_oncall
from demo.playbooks import work_checklist
from incidents import notifications, services
from incidents.models import (
    Audience,
    DetectionSource,
    Environment,
    Incident,
    IncidentType,
    Role,
    Service,
    Severity,
    Source,
    Status,
    TimelineEvent,
)
from postmortems import services as postmortem_services
from remediation import services as remediation_services

PEOPLE = [
    # username, first, last, group
    ("alice", "Alice", "Moreno", "Incident commanders"),
    ("ravi", "Ravi", "Shah", "Incident commanders"),
    ("bob", "Bob", "Lindqvist", "Responders"),
    ("chen", "Chen", "Wei", "Responders"),
    ("dana", "Dana", "Okafor", "Responders"),
    ("erik", "Erik", "Svensson", "Responders"),
    ("carol", "Carol", "Nguyen", settings.SECURITY_GROUP),
    ("frank", "Frank", "Adeyemi", settings.SECURITY_GROUP),
    ("grace", "Grace", "Kim", "Stakeholders"),
    ("henry", "Henry", "Dubois", "Stakeholders"),
]

SERVICES = [
    # name, slug, team, tier, description
    ("Public API", "api", "Platform", 1, "REST API used by the apps and integrators."),
    ("Web app", "web", "Frontend", 1, "The customer-facing single-page application."),
    ("Checkout", "checkout", "Payments", 1, "Basket, checkout and order placement."),
    ("Payments gateway", "payments", "Payments", 1, "Card and wallet payments via providers."),
    ("Authentication", "auth", "Identity", 1, "Login, sessions, SSO and MFA."),
    ("Search", "search", "Discovery", 2, "Product search and suggestions."),
    ("Primary database", "database", "Platform", 1, "PostgreSQL cluster behind most services."),
    ("Notifications", "notifications", "Engagement", 2, "Email, push and SMS delivery."),
    ("CDN", "cdn", "Platform", 2, "Static assets and image delivery."),
    ("Data pipeline", "data-pipeline", "Data", 3, "Nightly ETL into the warehouse."),
]

SCENARIOS = {
    "outage": [
        ("Checkout returns 502 for all users", ["checkout", "api"]),
        ("Login page times out", ["auth", "web"]),
        ("Public API unavailable in eu-west", ["api"]),
        ("Push notifications not delivered", ["notifications"]),
        ("Web app blank page after deploy", ["web", "cdn"]),
    ],
    "performance": [
        ("Search latency p99 above 4s", ["search"]),
        ("Database CPU saturated, slow queries", ["database", "api"]),
        ("Image loading slow in APAC", ["cdn"]),
        ("API error rate above 5%", ["api"]),
    ],
    "security": [
        ("Credential-stuffing attack on login", ["auth"]),
        ("Leaked API token found in public repository", ["api"]),
        ("Suspicious admin access from unknown IP", ["auth", "database"]),
    ],
    "data": [
        ("Nightly ETL loaded duplicate orders", ["data-pipeline"]),
        ("Replica lag causing stale account balances", ["database"]),
        ("Backup job failing for three nights", ["database"]),
    ],
    "integration": [
        ("Payment provider declining valid cards", ["payments", "checkout"]),
        ("SMS provider rate-limiting our account", ["notifications"]),
        ("SSO provider certificate expired", ["auth"]),
    ],
}

# What the communications lead called them on the status page. Those without one
# (and every SEV4) were never published: the status page shows only what was written
# for the public, never an internal title.
PUBLIC_TITLES = {
    "Checkout returns 502 for all users": "Checkout unavailable",
    "Login page times out": "Problems signing in",
    "Public API unavailable in eu-west": "API unavailable in Europe",
    "Push notifications not delivered": "Delayed push notifications",
    "Web app blank page after deploy": "Web app not loading",
    "Search latency p99 above 4s": "Slow search results",
    "Database CPU saturated, slow queries": "Slow responses across the service",
    "Image loading slow in APAC": "Slow image loading in Asia-Pacific",
    "API error rate above 5%": "Elevated API error rates",
    "Replica lag causing stale account balances": "Account balances shown late",
    "Payment provider declining valid cards": "Card payments failing",
    "SMS provider rate-limiting our account": "Delayed text messages",
    "SSO provider certificate expired": "Single sign-on unavailable",
}
# The public update an open, published incident carries for where it stands.
PUBLIC_UPDATES = {
    Status.INVESTIGATING: "We are investigating reports of errors and will post updates here.",
    Status.IDENTIFIED: "We have found the cause and are rolling out a fix.",
    Status.MONITORING: "A fix is live; we are watching error rates before calling this resolved.",
}

NOTES = [
    (TimelineEvent.Kind.ACTION, "Rolled back the last deploy of the affected service."),
    (TimelineEvent.Kind.NOTE, "Error rate graph shows the spike starting at the deploy."),
    (TimelineEvent.Kind.DECISION, "Freeze all deploys until the incident is resolved."),
    (TimelineEvent.Kind.COMMUNICATION, "Posted an update in the customer support channel."),
    (TimelineEvent.Kind.ACTION, "Scaled the worker pool from 6 to 12 instances."),
    (TimelineEvent.Kind.NOTE, "Provider status page confirms a partial outage on their side."),
    (TimelineEvent.Kind.DECISION, "Fail over to the secondary region."),
]

# What the reviews of closed SEV1/SEV2 incidents found, by incident type.
REVIEWS = {
    "outage": (
        "A deploy changed the default size of the **database connection pool**; under "
        "peak traffic every worker waited on a connection and requests timed out.",
        [
            ("technical", "Load tests did not replay production traffic patterns."),
            ("process", "The deploy checklist has no step for connection settings."),
        ],
    ),
    "performance": (
        "A query without an index ran on every page view once a feature flag was enabled.",
        [
            ("technical", "No slow-query alert on the primary database."),
            ("process", "Feature flags were enabled for all users at once."),
        ],
    ),
    "security": (
        "Login had no rate limit per account, so credential stuffing was not slowed down.",
        [
            ("technical", "Rate limiting existed only per IP address."),
            ("external", "A large credential dump was published the day before."),
        ],
    ),
    "data": (
        "A retried batch job was not idempotent and loaded the same rows twice.",
        [("technical", "The loader did not de-duplicate by natural key.")],
    ),
    "integration": (
        "The provider rotated a certificate and our client pinned the old one.",
        [
            ("external", "The provider announced the rotation only on their status page."),
            ("process", "Nobody owned the provider's change notifications."),
        ],
    ),
}

# The follow-up work each kind of review asks for: (title, category, priority).
ACTIONS = {
    "outage": [
        ("Alert on connection pool saturation", "technical", "P1"),
        ("Add connection settings to the deploy checklist", "process", "P2"),
    ],
    "performance": [
        ("Add a slow-query alert on the primary database", "technical", "P2"),
        ("Roll out feature flags in stages by default", "process", "P3"),
    ],
    "security": [
        ("Rate-limit logins per account", "technical", "P1"),
        ("Run a credential-stuffing drill with support", "training", "P3"),
    ],
    "data": [("Make the loader idempotent by natural key", "technical", "P2")],
    "integration": [
        ("Subscribe the on-call rota to provider change notices", "process", "P2"),
        ("Stop pinning provider certificates", "technical", "P3"),
    ],
}
# How far along the demo's follow-up work is, in turn: a realistic mix for the report.
PROGRESS = ["done", "in_progress", "open", "blocked", "done", "wont_do", "open"]

# Severity mix of a typical quarter: few SEV1s, many SEV3/4s.
SEVERITY_WEIGHTS = {"SEV1": 3, "SEV2": 8, "SEV3": 14, "SEV4": 10}
# The path through the lifecycle, and the first ones guarantee every state appears.
FORCED_ENDS = [
    Status.TRIAGE,
    Status.DECLARED,
    Status.INVESTIGATING,
    Status.IDENTIFIED,
    Status.MONITORING,
    Status.RESOLVED,
    Status.CANCELLED,
    Status.CLOSED,
]
PATH = [Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED, Status.CLOSED]


class Command(BaseCommand):
    help = "Create demo people, services and incidents. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--incidents", type=int, default=40)
        parser.add_argument("--seed", type=int, default=2026)

    @transaction.atomic
    def handle(self, *args, **options):
        people = self._people()
        self._services()
        if Incident.objects.exists():
            self.stdout.write("Demo people and services are in place; incidents already exist.")
            seed_oncall(self.stdout)
            seed_alerts(self.stdout)
            seed_forensics(self.stdout)
            return
        rng = random.Random(options["seed"])
        plans = [
            self._plan(rng, people, FORCED_ENDS[index] if index < len(FORCED_ENDS) else None)
            for index in range(options["incidents"])
        ]
        # Declare in time order so references count up with the calendar; history is
        # being loaded, so nobody is paged about it.
        with notifications.muted():
            for plan in sorted(plans, key=lambda plan: plan["declare"]["declared_at"]):
                self._create(rng, **plan)
        # What is happening now: the rota and a live SEV1 it is paged for; live alerts, a
        # triage candidate (after the history, so references count up with the calendar).
        seed_oncall(self.stdout)
        seed_alerts(self.stdout)
        # The breach clocks of the past quarter settled, and a live one ticking.
        seed_forensics(self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {options['incidents']} demo incidents. Demo people have no password; "
                "give one with `python manage.py changepassword alice`."
            )
        )

    def _people(self):
        User = get_user_model()
        people = {}
        for username, first, last, group in PEOPLE:
            # Stakeholders read the status page and published reviews through the
            # stakeholder sign-in (/accounts/login/); the admin is for responders.
            staff = group != "Stakeholders"
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.com",
                    "is_staff": staff,
                },
            )
            if created:
                user.set_unusable_password()
                user.save()
            elif user.is_staff and not staff and not user.is_superuser:
                # Seeded by an older version, when every demo person was staff.
                user.is_staff = False
                user.save(update_fields=["is_staff"])
            user.groups.add(Group.objects.get(name=group))
            people.setdefault(group, []).append(user)
        return people

    def _services(self):
        for name, slug, team, tier, description in SERVICES:
            Service.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "owning_team": team,
                    "tier": tier,
                    "description": description,
                },
            )

    def _plan(self, rng, people, end):
        """Return what to declare and how far along the lifecycle to take it."""
        now = timezone.now()
        type_slug = rng.choice(list(SCENARIOS))
        title, service_slugs = rng.choice(SCENARIOS[type_slug])
        severity_key = rng.choices(list(SEVERITY_WEIGHTS), weights=SEVERITY_WEIGHTS.values())[0]
        severity = Severity.objects.get(key=severity_key)
        commanders = people["Incident commanders"]
        responders = people["Responders"] + (people["Security"] if type_slug == "security" else [])

        # Minutes between milestones; quicker for higher severities.
        pace = severity.rank
        gaps = [
            rng.randint(2, 12) * pace,  # acknowledge
            rng.randint(10, 90) * pace,  # identify
            rng.randint(5, 45),  # mitigate
            rng.randint(20, 240),  # resolve
            rng.randint(24 * 60, 5 * 24 * 60),  # close after the review
        ]
        if end is None:
            end = rng.choices(
                [Status.CLOSED, Status.RESOLVED, Status.CANCELLED], weights=[12, 4, 1]
            )[0]
        path = [] if end in (Status.TRIAGE, Status.DECLARED, Status.CANCELLED) else PATH
        if end in PATH:
            path = PATH[: PATH.index(end) + 1]
        needed = timedelta(minutes=sum(gaps[: len(path)]) + 30)
        if end in (Status.CLOSED, Status.CANCELLED):
            ago = timedelta(days=rng.uniform(7, 89))
        elif end == Status.RESOLVED:
            ago = timedelta(days=rng.uniform(1, 5))
        else:
            ago = timedelta(minutes=rng.randint(5, 50))
        declared_at = now - max(ago, needed)
        detected_at = declared_at - timedelta(minutes=rng.randint(1, 15))
        started_at = detected_at - timedelta(minutes=rng.randint(0, 30))

        commander = rng.choice(commanders)
        declare = dict(
            title=title,
            severity=severity,
            incident_type=IncidentType.objects.get(slug=type_slug),
            environment=rng.choices(Environment.values, weights=[8, 2, 1])[0],
            summary=f"{title}. Impact is being assessed by the on-call team.",
            services=Service.objects.filter(slug__in=service_slugs),
            customer_impact="Customers cannot complete the affected journey."
            if severity.rank <= 2
            else "",
            estimated_users_affected=rng.choice([None, 120, 1_500, 12_000, 85_000]),
            detection_source=rng.choice(DetectionSource.values),
            started_at=started_at,
            detected_at=detected_at,
            declared_at=declared_at,
            triage=end == Status.TRIAGE,
            commander=None if end in (Status.TRIAGE, Status.DECLARED) else commander,
            actor=commander,
            source=rng.choice([Source.ADMIN, Source.API, Source.CLI]),
        )
        return {
            "declare": declare,
            "end": end,
            "path": path,
            "gaps": gaps,
            "commander": commander,
            "responder": rng.choice(responders),
            # Someone who may read the incident (security ones are confidential).
            "reviewer": rng.choice(
                people["Security"]
                if type_slug == "security"
                else [user for user in commanders if user != commander]
            ),
        }

    def _create(self, rng, *, declare, end, path, gaps, commander, responder, reviewer):
        incident = services.incident_declare(**declare)
        declared_at = declare["declared_at"]
        if end == Status.CANCELLED:
            services.incident_transition(
                incident=incident,
                to_status=Status.CANCELLED,
                note="False alarm: monitoring glitch, no customer impact.",
                actor=commander,
                occurred_at=declared_at + timedelta(minutes=rng.randint(3, 20)),
                source=Source.ADMIN,
            )
            return

        at = declared_at
        for step, status in enumerate(path):
            at += timedelta(minutes=gaps[step])
            if status == Status.INVESTIGATING:
                services.incident_acknowledge(
                    incident=incident, actor=commander, occurred_at=at, source=Source.ADMIN
                )
                services.role_assign(
                    incident=incident,
                    role=Role.TECHNICAL_LEAD,
                    user=responder,
                    actor=commander,
                    occurred_at=at,
                    source=Source.ADMIN,
                )
                kind, text = rng.choice(NOTES)
                services.timeline_add_entry(
                    incident=incident,
                    kind=kind,
                    summary=text,
                    actor=responder,
                    occurred_at=at + timedelta(minutes=1),
                    source=Source.ADMIN,
                )
                at += timedelta(minutes=1)
                continue
            if status == Status.CLOSED:
                work_checklist(incident, commander, rng, until=at, all_required=True)
                if incident.severity.postmortem_required:
                    self._review(incident, commander, reviewer)
            services.incident_transition(
                incident=incident,
                to_status=status,
                actor=commander,
                occurred_at=at,
                source=Source.ADMIN,
            )
        if Status.CLOSED not in path:
            work_checklist(incident, responder, rng, until=at, all_required=False)
        self._publish(incident, commander)

    def _publish(self, incident, author):
        """Give a customer-facing incident its public title, and an open one its update."""
        public_title = PUBLIC_TITLES.get(incident.title)
        if not public_title or incident.confidential or incident.severity.rank > 3:
            return
        incident = services.incident_update_details(
            incident=incident, public_title=public_title, actor=author, source=Source.ADMIN
        )
        if incident.status in PUBLIC_UPDATES and incident.environment == Environment.PRODUCTION:
            services.status_update_post(
                incident=incident,
                audience=Audience.PUBLIC,
                summary=PUBLIC_UPDATES[incident.status],
                actor=author,
                source=Source.ADMIN,
            )

    def _review(self, incident, owner, reviewer):
        """Write, review and publish the post-mortem that resolving the incident started."""
        root_cause, factors = REVIEWS[incident.incident_type.slug]
        postmortem = incident.postmortem
        postmortem_services.postmortem_update(
            postmortem=postmortem,
            actor=owner,
            source=Source.ADMIN,
            reviewers=[reviewer],
            root_cause=root_cause,
            contributing_factors=factors,
            went_well="- The on-call engineer paged the right team within minutes.",
            could_improve="- Customers heard from us later than our update cadence promised.",
            lessons_learned="Configuration is code: it needs the same review and tests.",
        )
        for title, category, priority in ACTIONS[incident.incident_type.slug]:
            item = remediation_services.action_item_create(
                postmortem=postmortem,
                title=title,
                category=category,
                priority=priority,
                owner=reviewer,
                team=incident.services.first().owning_team if incident.services.exists() else "",
                # Due dates spread around today, so some work is overdue and some due soon.
                due_on=incident.declared_at.date() + timedelta(days=30),
                actor=owner,
                source=Source.ADMIN,
            )
            self._progress(item, owner, reviewer)
        postmortem_services.postmortem_submit(
            postmortem=postmortem, actor=owner, source=Source.ADMIN
        )
        postmortem_services.postmortem_approve(
            postmortem=postmortem, actor=reviewer, source=Source.ADMIN
        )
        postmortem_services.postmortem_publish(
            postmortem=postmortem, actor=owner, source=Source.ADMIN
        )

    def _progress(self, item, owner, worker):
        status = PROGRESS[item.pk % len(PROGRESS)]
        notes = {
            "done": "Verified in staging with a replayed traffic capture.",
            "blocked": "Waiting for the platform team's maintenance window.",
            "wont_do": "Superseded by the move to managed connection pooling.",
        }
        if status == "blocked":
            remediation_services.action_item_transition(
                item=item, to_status="in_progress", actor=worker, source=Source.ADMIN
            )
        if status != "open":
            remediation_services.action_item_transition(
                item=item,
                to_status=status,
                note=notes.get(status, ""),
                actor=worker,
                source=Source.ADMIN,
            )
