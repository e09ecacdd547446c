"""Fill a PostgreSQL database with three years of incidents for the console benchmarks.

Run: .venv/bin/python bench/console_data.py        (DATABASE_URL, default sitrep_bench)
     BENCH_CONSOLE_INCIDENTS=100000 BENCH_CONSOLE_EVENTS=1000000 (the defaults)
It migrates the database, then generates only if it holds no incident. `make
bench-console` calls it first.

What it writes, with PostgreSQL's COPY (psycopg 3 `cursor.copy`), not the services: 230
people, 40 services; 100,000 incidents over three years (about 96 % closed, resolved or
cancelled, 300 open across every open status including triage, SEV1–SEV4, security and
some data incidents confidential), 1–3 services each, commander / technical-lead /
communications-lead assignments (some handed over), internal and public status updates,
1,000,000 timeline events (about ten an incident; four incidents with 5,000–15,000,
one of them open), post-mortems for SEV1/SEV2 and their action items, and each declared
incident's checklist copied from the default playbooks (about 1.3 million steps). References follow
the UTC year of declaration and the reference counters are set to match, so a declaration
made afterwards gets the next number. No history rows are written (a benchmark of the
console's reads does not read them) and no outbox rows.

The bench user `bench-commander` is in "Incident commanders", not a superuser and not in
the security group, so every page it loads pays for the confidentiality filter; it holds
roles on about 2 % of the incidents, commands 25 open ones, owns and reviews post-mortems
and owns action items, some overdue.
"""

import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sitrep_bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    import django

    django.setup()

BENCH_USERNAME = "bench-commander"
SEED = 2026
DAY = timedelta(days=1)
OPEN_COUNTS = {
    "triage": 40,
    "declared": 50,
    "investigating": 90,
    "identified": 50,
    "monitoring": 70,
}
# (open?, event count): the incidents whose timelines run into the thousands.
BIG_TIMELINES = [(True, 5_000), (False, 8_000), (False, 12_000), (False, 15_000)]

SERVICE_NAMES = [
    "Checkout API", "Payments gateway", "Search", "Login", "Orders database", "Inventory",
    "Mobile API", "Web front end", "Notifications", "Email delivery", "SMS gateway",
    "Recommendations", "Billing", "Invoicing", "Reporting", "Data warehouse", "CDN",
    "DNS", "Load balancer", "Kubernetes cluster", "Message queue", "Cache cluster",
    "Object storage", "Identity provider", "Admin portal", "Partner API", "Webhooks",
    "Shipping", "Returns", "Customer support tool", "Feature flags", "Metrics pipeline",
    "Logging pipeline", "Backups", "VPN", "Office network", "Build system",
    "Artifact registry", "Status page", "Analytics",
]  # fmt: skip
SYMPTOMS = [
    "elevated 5xx errors", "high latency", "timeouts", "unavailable", "degraded",
    "replication lag", "certificate expiry", "disk full", "memory exhaustion",
    "connection pool exhausted", "failed deployment", "queue backlog", "data inconsistency",
    "intermittent errors", "slow queries", "rate limiting", "DNS resolution failures",
    "stale cache", "login failures", "duplicate messages", "missing records",
    "partial outage", "packet loss", "authentication errors", "CPU saturation",
]  # fmt: skip
CONTEXT = [
    "in eu-west", "in us-east", "after release", "for some customers", "during peak",
    "on mobile", "for enterprise tenants", "after config change", "in one zone", "",
]  # fmt: skip
NOTES = [
    "Looking at the dashboards", "Rolled back the last deploy", "Paged the database team",
    "Error rate back to baseline", "Customer reports via support", "Scaled out the workers",
    "Restarted the pods", "Found a bad config push", "Failover started", "Cache flushed",
    "Waiting for the vendor", "Traffic shifted to the other region", "Added capacity",
    "Root cause looks like a slow query", "Monitoring the fix", "Hotfix deployed",
]  # fmt: skip
MANUAL_KINDS = ["note", "note", "note", "action", "action", "decision", "communication", "alert"]
SEVERITY_WEIGHTS = {"SEV1": 3, "SEV2": 12, "SEV3": 40, "SEV4": 45}
TYPE_WEIGHTS = {"outage": 50, "performance": 20, "integration": 12, "data": 10, "security": 8}
STAMPS = [
    ("investigating", "acknowledged_at"),
    ("identified", "identified_at"),
    ("monitoring", "mitigated_at"),
    ("resolved", "resolved_at"),
    ("closed", "closed_at"),
]
INCIDENT_COLUMNS = (
    "id", "reference", "title", "public_title", "summary", "severity_id", "incident_type_id",
    "environment", "status", "customer_impact", "estimated_users_affected",
    "detection_source", "confidential", "declared_by_id", "started_at", "detected_at",
    "declared_at", "acknowledged_at", "identified_at", "mitigated_at", "resolved_at",
    "closed_at", "created_at", "updated_at",
)  # fmt: skip


def is_empty() -> bool:
    from incidents.models import Incident

    return not Incident.objects.exists()


def _copy(cursor, table, columns, rows) -> int:
    """COPY rows into table; return how many."""
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _pick(rng, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _people():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    commanders = Group.objects.get(name="Incident commanders")
    responders = Group.objects.get(name="Responders")
    bench = User.objects.create_user(BENCH_USERNAME, is_staff=True)
    bench.groups.add(commanders)
    others = User.objects.bulk_create(
        User(username=f"responder{number:03d}", email=f"r{number}@example.com", is_staff=True)
        for number in range(229)
    )
    Membership = User.groups.through
    Membership.objects.bulk_create(
        Membership(user_id=user.pk, group_id=(commanders if index < 30 else responders).pk)
        for index, user in enumerate(others)
    )
    return bench.pk, [bench.pk] + [user.pk for user in others]


def _plan_incidents(rng, count, now, severities, types, services):
    """Return one dict per incident, oldest first, with its times, status and people."""
    history_count = count - sum(OPEN_COUNTS.values())
    plans = []
    span = 3 * 365 * DAY
    for _ in range(history_count):
        declared = now - 3 * DAY - span * rng.random()
        roll = rng.random()
        if roll < 0.015:
            status = "cancelled"
        elif roll < 0.03:
            status = "cancelled-triage"  # a false positive, never declared
        elif roll < 0.06:
            # Resolved and not yet closed: the last month's, waiting for their reviews.
            status = "resolved"
            declared = now - 3 * DAY - 30 * DAY * rng.random()
        else:
            status = "closed"
        plans.append({"declared": declared, "status": status})
    for status, number in OPEN_COUNTS.items():
        for _ in range(number):
            # Open ones are recent: the unacknowledged from the last six hours (many overdue
            # for SEV1/SEV2), the rest from the last day and a half.
            hours = 6 if status in ("declared", "triage") else 36
            plans.append(
                {"declared": now - timedelta(hours=hours) * rng.random(), "status": status}
            )
    plans.sort(key=lambda plan: plan["declared"])

    numbers = {}
    for pk, plan in enumerate(plans, start=1):
        plan["id"] = pk
        year = plan["declared"].astimezone(UTC).year
        numbers[year] = numbers.get(year, 0) + 1
        plan["reference"] = f"INC-{year}-{numbers[year]:04d}"
        severity = severities[_pick(rng, SEVERITY_WEIGHTS)]
        kind = _pick(rng, TYPE_WEIGHTS)
        plan["severity"] = severity
        plan["type"] = types[kind]
        plan["confidential"] = kind == "security" or (kind == "data" and rng.random() < 0.2)
        plan["environment"] = rng.choices(
            ["production", "staging", "development"], weights=[80, 15, 5]
        )[0]
        plan["services"] = rng.sample(services, rng.choice([1, 1, 1, 2, 2, 3]))
        first = plan["services"][0]
        plan["service_name"] = first[1]
    return plans, numbers


def _times(rng, plan, now):
    """Set the milestone times the plan's status implies."""
    declared = plan["declared"]
    started = declared - timedelta(minutes=rng.randint(1, 90))
    detected = started + (declared - started) * rng.random()
    times = {
        "started_at": started,
        "detected_at": detected,
        "declared_at": declared,
        "acknowledged_at": None,
        "identified_at": None,
        "mitigated_at": None,
        "resolved_at": None,
        "closed_at": None,
    }
    status = plan["status"]
    if status in ("triage", "cancelled-triage"):
        times["declared_at"] = None
        if status == "cancelled-triage":
            return times, "cancelled", declared + timedelta(minutes=rng.randint(5, 120))
        return times, "triage", declared
    reached = {
        "declared": 0,
        "investigating": 1,
        "identified": 2,
        "monitoring": 3,
        "resolved": 4,
        "closed": 5,
        "cancelled": rng.randint(0, 2),
    }[status]
    when = declared
    ack_within = plan["severity"].acknowledge_within
    for index, (_, field) in enumerate(STAMPS[:reached]):
        if index == 0:
            # Most acknowledge within the response time; one in ten is late.
            late = rng.random() < 0.1
            step = ack_within * (1 + rng.random() if late else rng.random())
        elif field == "closed_at":
            step = timedelta(days=rng.randint(1, 20))
        else:
            step = timedelta(minutes=rng.randint(5, 240))
        when = min(when + step, now)
        times[field] = when
    last = when
    if status == "cancelled":
        last = when + timedelta(minutes=rng.randint(5, 60))
    return times, ("cancelled" if status == "cancelled" else status), last


def generate(incidents: int = 100_000, events: int = 1_000_000, seed: int = SEED, out=print):
    """Fill the (migrated, empty) database; return the seconds it took."""
    from django.db import connection, transaction

    from incidents.models import IncidentType, Service, Severity

    if connection.vendor != "postgresql":
        raise SystemExit("The console data generator needs PostgreSQL (it uses COPY).")
    started = time.perf_counter()
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    severities = {severity.key: severity for severity in Severity.objects.all()}
    types = {kind.slug: kind for kind in IncidentType.objects.all()}
    with transaction.atomic():
        bench_pk, people = _people()
        made = Service.objects.bulk_create(
            Service(
                name=name,
                slug=name.lower().replace(" ", "-"),
                owning_team=f"Team {index % 8}",
                tier=1 + index % 3,
                public=index % 7 != 6,
            )
            for index, name in enumerate(SERVICE_NAMES)
        )
        services = [(service.pk, service.name) for service in made]
        plans, numbers = _plan_incidents(rng, incidents, now, severities, types, services)

        # People on each incident: who commands (and whether it was handed over), leads.
        open_plans = [plan for plan in plans if plan["status"] in OPEN_COUNTS]
        mine_open = {plan["id"] for plan in rng.sample(open_plans, 25)}
        for plan in plans:
            plan["times"], plan["final"], plan["last"] = _times(rng, plan, now)
            declared = plan["times"]["declared_at"] is not None
            commander = bench_pk if rng.random() < 0.02 else rng.choice(people[1:31])
            if plan["id"] in mine_open:
                commander = bench_pk
            plan["commander"] = commander if declared else None
            # Some open SEV1/SEV2 have nobody in command yet ("no commander").
            if plan["final"] in OPEN_COUNTS and plan["id"] not in mine_open and rng.random() < 0.1:
                plan["commander"] = None
            plan["handed_over"] = declared and rng.random() < 0.05
            key = plan["severity"].key
            plan["leads"] = []
            if declared and (key in ("SEV1", "SEV2") or rng.random() < 0.3):
                plan["leads"].append(("technical_lead", rng.choice(people[1:])))
            if declared and (key == "SEV1" or (key == "SEV2" and rng.random() < 0.5)):
                plan["leads"].append(("communications_lead", rng.choice(people[1:])))
            if plan["final"] in OPEN_COUNTS and rng.random() < 0.05:
                plan["leads"].append(("scribe", bench_pk))
            public = (
                declared
                and plan["environment"] == "production"
                and not plan["confidential"]
                and (key in ("SEV1", "SEV2") or rng.random() < 0.3)
            )
            # Open ones: a third written up for the public so far.
            if plan["final"] in OPEN_COUNTS:
                public = public and rng.random() < 0.33
            plan["public"] = public

        steps_of = _playbook_steps()
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor
            written = {}
            written["incidents"] = _copy(
                cursor, "incidents_incident", INCIDENT_COLUMNS, _incident_rows(rng, plans, people)
            )
            written["services"] = _copy(
                cursor,
                "incidents_incident_services",
                ("incident_id", "service_id"),
                ((plan["id"], pk) for plan in plans for pk, _ in plan["services"]),
            )
            written["roles"] = _copy(
                cursor,
                "incidents_roleassignment",
                ("role", "assigned_at", "relieved_at", "assigned_by_id", "incident_id", "user_id"),
                _role_rows(rng, plans, people),
            )
            written["updates"] = _copy(
                cursor,
                "incidents_statusupdate",
                ("number", "audience", "status", "summary", "next_update_at", "published_at",
                 "author_id", "incident_id"),
                _update_rows(rng, plans, now),
            )  # fmt: skip
            written["events"] = _copy(
                cursor,
                "incidents_timelineevent",
                ("occurred_at", "created_at", "kind", "summary", "details", "source",
                 "author_id", "incident_id"),
                _event_rows(rng, plans, events, now),
            )  # fmt: skip
            written.update(_reviews(rng, cursor, plans, people, bench_pk, now))
            written["checklist steps"] = _copy(
                cursor, "playbooks_checkliststep", CHECKLIST_COLUMNS,
                _checklist_rows(rng, plans, people, now, steps_of),
            )  # fmt: skip
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('incidents_incident', 'id'), %s)",
                [len(plans)],
            )
            for year, last in numbers.items():
                cursor.execute(
                    "INSERT INTO incidents_referencecounter (year, last_number) VALUES (%s, %s) "
                    "ON CONFLICT (year) DO UPDATE SET last_number = GREATEST("
                    "incidents_referencecounter.last_number, EXCLUDED.last_number)",
                    [year, last],
                )
    with connection.cursor() as cursor:
        # What autovacuum would do within a minute; the visibility map lets the planner
        # use index-only scans as it would on a settled production database.
        cursor.execute("VACUUM ANALYZE")
    seconds = time.perf_counter() - started
    out(
        "generated "
        + ", ".join(f"{count:,} {name}" for name, count in written.items())
        + f" in {seconds:.0f} s"
    )
    return seconds


def _incident_rows(rng, plans, people):
    for plan in plans:
        times = plan["times"]
        service = plan["service_name"]
        title = f"{service} {rng.choice(SYMPTOMS)} {rng.choice(CONTEXT)}".strip()
        public_title = f"{service}: {rng.choice(SYMPTOMS)}" if plan["public"] else ""
        summary = (
            f"{rng.choice(NOTES)}. {service} showed {rng.choice(SYMPTOMS)}; "
            f"first seen by {rng.choice(['monitoring', 'a customer', 'support', 'on-call'])}."
        )
        declared = times["declared_at"] is not None
        yield (
            plan["id"],
            plan["reference"],
            title,
            public_title,
            summary,
            plan["severity"].pk,
            plan["type"].pk,
            plan["environment"],
            plan["final"],
            "Some customers could not complete checkout." if rng.random() < 0.3 else "",
            rng.randint(10, 50_000) if rng.random() < 0.2 else None,
            rng.choice(
                ["monitoring_alert", "customer_report", "internal_report", "automated_check"]
            ),
            plan["confidential"],
            (plan["commander"] or rng.choice(people)) if declared else None,
            times["started_at"],
            times["detected_at"],
            times["declared_at"],
            times["acknowledged_at"],
            times["identified_at"],
            times["mitigated_at"],
            times["resolved_at"],
            times["closed_at"],
            plan["declared"],
            plan["last"],
        )


CHECKLIST_COLUMNS = (
    "incident_id", "playbook_id", "playbook_step_id", "playbook_name", "phase", "position",
    "title", "guidance", "runbook_url", "required", "due_within", "started_at", "due_at",
    "status", "completed_by_id", "completed_at", "note", "created_at",
)  # fmt: skip


def _playbook_steps() -> dict:
    """The default playbooks' steps by incident type (read before the COPY: a query on
    the connection while it copies would wait for itself)."""
    from playbooks.models import PlaybookStep

    steps_of = {}
    for step in PlaybookStep.objects.filter(playbook__is_active=True).select_related(
        "playbook__min_severity"
    ):
        steps_of.setdefault(step.playbook.incident_type_id, []).append(step)
    return steps_of


def _checklist_rows(rng, plans, people, now, steps_of):
    """Each declared incident's copy of its playbooks' steps (the default playbooks, as
    declaring copies them): a finished incident's all ticked or skipped, a few late; an
    open one's first phases part-way, so some time-boxed steps are overdue."""
    for plan in plans:
        declared = plan["times"]["declared_at"]
        if declared is None:
            continue
        finished = plan["final"] not in OPEN_COUNTS
        for step in steps_of.get(plan["type"].pk, ()):
            if plan["severity"].rank > step.playbook.min_severity.rank:
                continue
            due = declared + timedelta(minutes=step.due_within) if step.due_within else None
            status, by, at, note = "pending", None, None, ""
            if finished or (step.phase == "detection" and rng.random() < 0.6):
                skipped = not step.required and rng.random() < 0.3
                status = "skipped" if skipped else "done"
                box = (step.due_within or 60) * rng.uniform(0.2, 1.4)
                at = min(declared + timedelta(minutes=box), now)
                by, note = rng.choice(people[1:31]), "Not needed." if skipped else ""
            yield (
                plan["id"], step.playbook_id, step.pk, step.playbook.name, step.phase,
                step.position, step.title, step.guidance, step.runbook_url, step.required,
                step.due_within, declared, due, status, by, at, note, declared,
            )  # fmt: skip


def _role_rows(rng, plans, people):
    for plan in plans:
        declared = plan["times"]["declared_at"]
        if declared is None:
            continue
        if plan["commander"] is not None:
            if plan["handed_over"]:
                handover = declared + timedelta(minutes=rng.randint(10, 120))
                yield ("commander", declared, handover, None, plan["id"], rng.choice(people[1:31]))
                yield ("commander", handover, None, None, plan["id"], plan["commander"])
            else:
                yield ("commander", declared, None, None, plan["id"], plan["commander"])
        for role, user in plan["leads"]:
            assigned = declared + timedelta(minutes=rng.randint(1, 30))
            yield (role, assigned, None, plan["commander"], plan["id"], user)


def _update_rows(rng, plans, now):
    for plan in plans:
        declared = plan["times"]["declared_at"]
        if declared is None:
            continue
        key = plan["severity"].key
        internal = {"SEV1": (3, 6), "SEV2": (2, 4), "SEV3": (0, 2), "SEV4": (0, 1)}[key]
        audiences = ["internal"] * rng.randint(*internal)
        if plan["public"]:
            audiences += ["public"] * rng.randint(1, 3)
        rng.shuffle(audiences)
        end = plan["last"]
        cadence = plan["severity"].update_every
        for number, audience in enumerate(audiences, start=1):
            published = declared + (end - declared) * (number / (len(audiences) + 1))
            yield (
                number,
                audience,
                plan["final"] if number == len(audiences) else "investigating",
                f"Update {number}: {rng.choice(NOTES).lower()}.",
                published + cadence if plan["final"] in OPEN_COUNTS else None,
                min(published, now),
                plan["commander"],
                plan["id"],
            )


def _event_rows(rng, plans, total, now):
    """About total events: the lifecycle's own, then notes, actions and the rest."""
    big = {}
    open_ids = [plan["id"] for plan in plans if plan["final"] == "investigating"]
    closed_ids = [plan["id"] for plan in plans[:-1000] if plan["final"] == "closed"]
    for is_open, count in BIG_TIMELINES:
        big[rng.choice(open_ids if is_open else closed_ids)] = count
    rest = max(0, total - sum(big.values()))
    budget, normal_left = rest, len(plans) - len(big)
    for plan in plans:
        if plan["id"] in big:
            count = big[plan["id"]]
        else:
            # Spread what is left so the total comes out right: about ten each.
            count = max(2, round(budget / max(1, normal_left) + rng.uniform(-4, 4)))
            budget -= count
            normal_left -= 1
        yield from _timeline(rng, plan, count, now)


def _timeline(rng, plan, count, now):
    times = plan["times"]
    incident = plan["id"]
    start = times["declared_at"] or plan["declared"]
    end = min(plan["last"], now)
    if end <= start:
        end = start + timedelta(minutes=5)
    people = [plan["commander"]] + [user for _, user in plan["leads"]]
    people = [person for person in people if person is not None] or [None]
    lifecycle = []
    if times["declared_at"] is not None:
        lifecycle.append(
            (
                start,
                "declared",
                f"Declared as {plan['severity'].key}",
                {"severity": plan["severity"].key},
            )
        )
        previous = "declared"
        for status, field in STAMPS:
            if times[field] is not None:
                lifecycle.append(
                    (times[field], "status_change", f"Status {previous} → {status}",
                     {"from": previous, "to": status, "note": "", "stamped": field})
                )  # fmt: skip
                previous = status
        if plan["commander"] is not None:
            lifecycle.append(
                (start, "role_change", "Incident commander assigned",
                 {"role": "commander", "relieved": []})
            )  # fmt: skip
    else:
        lifecycle.append((start, "alert", "Alert fired", {}))
    if plan["final"] == "cancelled":
        lifecycle.append((end, "status_change", "Status → cancelled", {"to": "cancelled"}))
    span = (end - start).total_seconds()
    fillers = max(0, count - len(lifecycle))
    rows = list(lifecycle)
    for _ in range(fillers):
        when = start + timedelta(seconds=span * rng.random())
        kind = rng.choice(MANUAL_KINDS)
        rows.append((when, kind, rng.choice(NOTES), {}))
    rows.sort(key=lambda row: row[0])
    for when, kind, summary, details in rows:
        # One in ten written down later than it happened (occurred vs recorded).
        recorded = when + timedelta(minutes=rng.randint(1, 30)) if rng.random() < 0.1 else when
        system = kind in ("alert", "status_change") and rng.random() < 0.3
        yield (
            when,
            min(recorded, now),
            kind,
            summary,
            json.dumps(details),
            "system" if system else "admin",
            None if system else rng.choice(people),
            incident,
        )


def _reviews(rng, cursor, plans, people, bench_pk, now):
    """Post-mortems for declared SEV1/SEV2 that resolved, their reviewers and action items."""
    reviewed = [
        plan
        for plan in plans
        if plan["severity"].key in ("SEV1", "SEV2") and plan["times"]["resolved_at"] is not None
    ]
    rows, reviewers, items = [], [], []
    recent = [plan for plan in reviewed if plan["final"] == "resolved"]
    mine = {plan["id"] for plan in rng.sample(recent, min(30, len(recent)))}
    for pk, plan in enumerate(reviewed, start=1):
        resolved = plan["times"]["resolved_at"]
        due = resolved + timedelta(days=plan["severity"].postmortem_due_days or 5)
        if plan["final"] == "closed":
            status, published = "published", min(resolved + timedelta(days=rng.randint(2, 9)), now)
        else:
            status, published = rng.choice(["draft", "in_review"]), None
        owner = bench_pk if plan["id"] in mine else plan["commander"]
        rows.append(
            (pk, status, due, None, 1 if published else 0, published, "", "Summary.", "", "",
             "", "", "", "", "{}", "{}", None, resolved, published or resolved, plan["id"],
             owner, owner if published else None, False, "")
        )  # fmt: skip
        reviewer = bench_pk if plan["id"] in mine and rng.random() < 0.5 else rng.choice(people)
        reviewers.append((pk, reviewer))
        for number in range(rng.randint(1, 3)):
            done = published is not None and rng.random() < 0.9
            status_item = "done" if done else rng.choice(["open", "in_progress", "blocked"])
            item_owner = bench_pk if plan["id"] in mine else rng.choice(people)
            due_on = (resolved + timedelta(days=rng.randint(7, 60))).date()
            items.append(
                (f"Follow-up {number + 1}: {rng.choice(NOTES).lower()}", "", "technical",
                 rng.choice(["P1", "P2", "P3", "P4"]), status_item, "", due_on, "medium", "",
                 "", "", None, "", "", (published or now) if done else None, resolved,
                 published or resolved, item_owner if done else None, plan["commander"],
                 plan["id"], item_owner, pk)
            )  # fmt: skip
    written = {
        "post-mortems": _copy(
            cursor,
            "postmortems_postmortem",
            (
                "id",
                "status",
                "due_at",
                "review_meeting_at",
                "review_round",
                "published_at",
                "reopen_reason",
                "executive_summary",
                "impact",
                "root_cause",
                "detection_gaps",
                "went_well",
                "could_improve",
                "lessons_learned",
                "facts",
                "generated",
                "synced_at",
                "created_at",
                "updated_at",
                "incident_id",
                "owner_id",
                "published_by_id",
                "no_action_needed",
                "no_action_reason",
            ),
            rows,
        ),  # fmt: skip
        "reviewers": _copy(
            cursor, "postmortems_postmortem_reviewers", ("postmortem_id", "user_id"), reviewers
        ),
        "action items": _copy(
            cursor,
            "remediation_actionitem",
            (
                "title",
                "description",
                "category",
                "priority",
                "status",
                "team",
                "due_on",
                "effort",
                "tracker_key",
                "tracker_url",
                "blocked_reason",
                "blocked_at",
                "wont_do_reason",
                "verification_note",
                "completed_at",
                "created_at",
                "updated_at",
                "completed_by_id",
                "created_by_id",
                "incident_id",
                "owner_id",
                "postmortem_id",
            ),
            items,
        ),  # fmt: skip
    }
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence('postmortems_postmortem', 'id'), %s)",
        [max(1, len(rows))],
    )
    return written


def ensure_database(out=print):
    """Create the database DATABASE_URL names if it does not exist yet."""
    import psycopg
    from django.db import OperationalError, connection

    try:
        connection.ensure_connection()
        return
    except OperationalError as error:
        if "does not exist" not in str(error):
            raise
    settings = connection.settings_dict
    params = {
        "dbname": "postgres",
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{settings["NAME"]}"')
    out(f"created database {settings['NAME']}")


def ensure_data(out=print) -> float | None:
    """Create and migrate the database, then generate if it holds no incident; return
    the seconds generating took, or None."""
    from django.core.management import call_command

    ensure_database(out)
    call_command("migrate", verbosity=0, interactive=False)
    if not is_empty():
        out("the database already holds incidents: not generating")
        return None
    return generate(
        incidents=int(os.environ.get("BENCH_CONSOLE_INCIDENTS", "100000")),
        events=int(os.environ.get("BENCH_CONSOLE_EVENTS", "1000000")),
        out=out,
    )


if __name__ == "__main__":
    ensure_data()
