"""Benchmark the incident core (declare + acknowledge throughput, the changelist) and the
remediation report over many action items.

Run: make bench                      (SQLite)
     DATABASE_URL=postgres://postgres@127.0.0.1:5432/sitrep make bench
Creates a throw-away test database, prints a Markdown table; record results in
bench/RESULTS.md with the date and machine.
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)

INCIDENTS = int(os.environ.get("BENCH_INCIDENTS", "1000"))
PAGE_LOADS = int(os.environ.get("BENCH_PAGE_LOADS", "30"))
ACTION_ITEMS = int(os.environ.get("BENCH_ACTION_ITEMS", "5000"))


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def row(name, samples, unit="ms"):
    mean = statistics.mean(samples)
    return (
        f"| {name} | {len(samples)} | {mean:.1f} {unit} | {percentile(samples, 0.5):.1f} {unit} "
        f"| {percentile(samples, 0.95):.1f} {unit} |"
    )


def main():
    from incidents import services
    from incidents.models import IncidentType, Service, Severity, Source

    severities = list(Severity.objects.all())
    outage = IncidentType.objects.get(slug="outage")
    api = Service.objects.create(name="API", slug="api")
    # A commander, not a superuser: the list then pays for the confidentiality filter.
    commander = get_user_model().objects.create_user("bench", password="bench-pass", is_staff=True)
    commander.groups.add(Group.objects.get(name="Incident commanders"))

    declare_ms, ack_ms = [], []
    for number in range(INCIDENTS):
        start = time.perf_counter()
        incident = services.incident_declare(
            title=f"Incident {number}",
            severity=severities[number % len(severities)],
            incident_type=outage,
            services=[api],
            commander=commander,
            actor=commander,
            source=Source.ADMIN,
        )
        declare_ms.append((time.perf_counter() - start) * 1000)
        if number % 2:
            start = time.perf_counter()
            services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
            ack_ms.append((time.perf_counter() - start) * 1000)

    client = Client()
    client.force_login(commander)
    page_ms = []
    for _ in range(PAGE_LOADS):
        # The query log is a bounded deque; a full one would make the capture look empty.
        connection.queries_log.clear()
        start = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/admin/incidents/incident/")
        page_ms.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
        page_queries = len(queries)
    change_ms = []
    for _ in range(PAGE_LOADS):
        start = time.perf_counter()
        assert client.get(f"/admin/incidents/incident/{incident.pk}/change/").status_code == 200
        change_ms.append((time.perf_counter() - start) * 1000)

    report_rows = bench_report(client, commander)

    print(f"\n{connection.vendor}, {INCIDENTS} incidents, {ACTION_ITEMS} action items\n")
    print("| operation | runs | mean | median | p95 |")
    print("|---|---|---|---|---|")
    print(row("declare (with service + commander)", declare_ms))
    print(row("acknowledge", ack_ms))
    print(row(f"changelist page, 50 of {INCIDENTS} ({page_queries} queries)", page_ms))
    print(row("incident change page", change_ms))
    for report_row in report_rows:
        print(report_row)


def bench_report(client, owner):
    """Time the remediation report (admin page and API) and the action-item changelist."""
    from datetime import timedelta

    from django.utils import timezone

    from incidents.models import Incident
    from remediation.models import ActionItem

    # Volume, not behaviour, is under test here: rows are inserted in bulk.
    incidents = list(Incident.objects.all()[:200])
    statuses = ["open", "in_progress", "blocked", "done", "wont_do"]
    now = timezone.now()
    today = now.date()
    items = [
        ActionItem(
            incident=incidents[number % len(incidents)],
            title=f"Follow-up {number}",
            category=["technical", "process", "training"][number % 3],
            priority=f"P{number % 4 + 1}",
            status=statuses[number % 5],
            owner=owner,
            team=f"Team {number % 7}",
            due_on=today + timedelta(days=number % 60 - 30),
            completed_at=now - timedelta(days=number % 20) if number % 5 == 3 else None,
        )
        for number in range(ACTION_ITEMS)
    ]
    ActionItem.objects.bulk_create(items)

    rows = []
    for name, url in (
        ("remediation report page", "/admin/remediation/remediationreport/"),
        ("remediation report API", "/api/v1/remediation/report/"),
        ("action items changelist, 50 of all", "/admin/remediation/actionitem/"),
    ):
        samples = []
        for _ in range(PAGE_LOADS):
            connection.queries_log.clear()
            start = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            samples.append((time.perf_counter() - start) * 1000)
        rows.append(row(f"{name} ({len(queries)} queries)", samples))
    return rows


if __name__ == "__main__":
    if connection.vendor == "sqlite":
        # A file, as in production (WAL, fsync), not the in-memory test default.
        connection.settings_dict["TEST"]["NAME"] = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    setup_test_environment()
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        main()
    finally:
        teardown_databases(old_config, verbosity=0)
