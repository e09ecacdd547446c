"""Benchmark on-call at scale: "who is on call now" for every team with 500 people, 50
teams and 100 rotations (with overrides); and the paging watchdogs (page steps,
unacknowledged and stuck escalation) over 1,000 → 100,000 incidents that need nothing,
then with 200 pages due.

Run: make bench-oncall                 (SQLite)
     DATABASE_URL=postgres://postgres@127.0.0.1:5432/sitrep make bench-oncall
Creates a throw-away test database, prints Markdown tables; record results in
bench/RESULTS.md with the date and machine. BENCH_ONCALL_INCIDENTS (default
"1000,10000,100000") sets the incident counts.
"""

import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

SIZES = [
    int(size) for size in os.environ.get("BENCH_ONCALL_INCIDENTS", "1000,10000,100000").split(",")
]
ROUNDS = 20


def timed(fn, rounds=ROUNDS):
    """Run fn `rounds` times; return (its queries on the last run, ms samples)."""
    samples = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1000)
    return len(queries), samples


def row(name, queries, samples):
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"| {name} | {queries} | {statistics.median(samples):.1f} ms | {p95:.1f} ms "
        f"| {max(samples):.1f} ms |"
    )


def build_rota(rng):
    from oncall.models import OnCallRole, Override, Rotation, RotationMember, Team

    User = get_user_model()
    users = User.objects.bulk_create(
        User(username=f"person{number}", email=f"person{number}@example.com", is_staff=True)
        for number in range(500)
    )
    teams = Team.objects.bulk_create(
        Team(name=f"Team {number}", slug=f"team-{number}") for number in range(50)
    )
    roles = [OnCallRole.RESPONDER, OnCallRole.TECHNICAL_LEAD]
    today = timezone.now().date()
    rotations = Rotation.objects.bulk_create(
        Rotation(
            team=teams[number % 50],
            role=roles[number // 50],
            name=f"Rotation {number}",
            time_zone=rng.choice(["Europe/London", "America/New_York", "Asia/Singapore"]),
            starts_on=today - timedelta(days=rng.randrange(1, 400)),
            handoff_time=f"{rng.randrange(24):02d}:00",
            period=rng.choice(["daily", "weekly"]),
        )
        for number in range(100)
    )
    RotationMember.objects.bulk_create(
        RotationMember(
            rotation=rotation, user=users[(index * 5 + position) % 500], position=position
        )
        for index, rotation in enumerate(rotations)
        for position in range(5)
    )
    now = timezone.now()
    Override.objects.bulk_create(
        Override(
            rotation=rotations[number * 5],
            user=users[number],
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=3),
        )
        for number in range(20)
    )
    return teams


def quiet_incidents(count, start_number):
    """Incidents that need no page: closed ones mostly, some acknowledged and updated."""
    from incidents.models import Incident, IncidentType, Severity, Status

    severities = list(Severity.objects.all())
    outage = IncidentType.objects.get(slug="outage")
    now = timezone.now()
    rows = []
    for number in range(start_number, start_number + count):
        when = now - timedelta(days=number % 365, minutes=number % 1440)
        closed = number % 50 != 0
        rows.append(
            Incident(
                reference=f"INC-B{number:07d}",
                title=f"Bench incident {number}",
                severity=severities[number % len(severities)],
                incident_type=outage,
                status=Status.CLOSED if closed else Status.INVESTIGATING,
                started_at=when,
                detected_at=when,
                declared_at=when if closed else now - timedelta(minutes=5),
                acknowledged_at=when if closed else now - timedelta(minutes=4),
                mitigated_at=when if closed else None,
                resolved_at=when if closed else None,
                closed_at=when if closed else None,
            )
        )
    Incident.objects.bulk_create(rows, batch_size=2000)


def main():
    from incidents import notifications
    from incidents.models import IncidentType, Severity, Source

    # The watchdogs' own cost: the outbox rows are written, their delivery (measured by
    # `make bench-outbox`) is not run inline as the test settings' sync broker would.
    notifications.queue = lambda ids: None
    from incidents.services import incident_declare
    from oncall.schedule import on_call
    from oncall.services.escalation import escalate_stuck, escalate_unacknowledged
    from oncall.services.paging import page_people, pages_advance

    rng = random.Random(2026)
    teams = build_rota(rng)
    lines = [
        "| on call now | queries | p50 | p95 | max |",
        "|---|---|---|---|---|",
    ]
    queries, samples = timed(lambda: on_call())
    lines.append(row("every team (50 teams, 100 rotations, 500 people)", queries, samples))
    queries, samples = timed(lambda: on_call(teams=teams[:5]))
    lines.append(row("5 teams", queries, samples))
    queries, samples = timed(lambda: on_call(teams=teams[:1]))
    lines.append(row("1 team", queries, samples))
    print("\n".join(lines), flush=True)

    print(
        "\n| incidents that need nothing | watchdog | queries | p50 | p95 | max |\n"
        "|---|---|---|---|---|---|",
        flush=True,
    )
    made = 0
    watchdogs = [
        ("page steps", pages_advance),
        ("unacknowledged", escalate_unacknowledged),
        ("stuck", escalate_stuck),
    ]
    for size in SIZES:
        quiet_incidents(size - made, made)
        made = size
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE")
        for name, watchdog in watchdogs:
            queries, samples = timed(watchdog)
            print(row(f"{size:,} | {name}", queries, samples), flush=True)

    # 200 pages with a step due (a storm): what one round costs when it has work.
    sev3 = Severity.objects.get(key="SEV3")
    outage = IncidentType.objects.get(slug="outage")
    people = list(get_user_model().objects.order_by("pk")[:200])
    for index in range(20):
        incident = incident_declare(
            title=f"Storm {index}", severity=sev3, incident_type=outage, source=Source.SYSTEM
        )
        page_people(
            incident=incident,
            users=people[index * 10 : index * 10 + 10],
            reason="manual",
            why="by the bench",
            source=Source.SYSTEM,
        )
    from oncall.models import Page

    Page.objects.update(next_step_at=timezone.now() - timedelta(seconds=1))
    # Each page's plan is one email, already sent: give each a second step to send.
    for page in Page.objects.all():
        page.plan = page.plan + [dict(page.plan[0], after=0)]
        page.save(update_fields=["plan"])
    with CaptureQueriesContext(connection) as captured:
        start = time.perf_counter()
        sent = pages_advance()
        elapsed = (time.perf_counter() - start) * 1000
    print(
        f"\n200 pages due beside {made:,} incidents: one round sent {sent} steps in "
        f"{len(captured)} queries, {elapsed:.0f} ms",
        flush=True,
    )


if __name__ == "__main__":
    setup_test_environment()
    config = setup_databases(verbosity=0, interactive=False)
    try:
        main()
    finally:
        teardown_databases(config, verbosity=0)
