"""Benchmark the commander's console at 100,000 incidents and 1,000,000 timeline events.

Run: make bench-console
     DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> make bench-console
     .venv/bin/python bench/console.py --json results.json      (also save the figures)
The database (default sitrep_bench) is migrated and, if it holds no incident, filled by
bench/console_data.py (about a minute); later runs reuse it. It is not a throw-away test
database: the pages are measured on the data as generated, `VACUUM ANALYZE`d.

Each page is loaded in-process (django.test.Client, no network, DEBUG off) as
`bench-commander`, an incident commander (not a superuser: the confidentiality filter is
paid for), BENCH_CONSOLE_WARMUP times (default 3), then BENCH_CONSOLE_RUNS times (default 20):
median and p95 of the server time and the queries of one request. A page that answers
404 (not built yet) is reported "not available". The status pages are measured with the
cache cleared before each request, then cached. Last, EXPLAIN ANALYZE of the searches'
queries shows whether the trigram indexes (migration incidents 0016) serve them.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sitrep_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

# After the project root: bench/oncall.py must not shadow the oncall app.
sys.path.append(str(Path(__file__).resolve().parent))
import console_data  # noqa: E402

WARMUP = int(os.environ.get("BENCH_CONSOLE_WARMUP", "3"))
RUNS = int(os.environ.get("BENCH_CONSOLE_RUNS", "20"))
SEARCH_WORD = os.environ.get("BENCH_CONSOLE_WORD", "replication")


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(client, name, url, *, before=None, headers=None):
    """Load url WARMUP + RUNS times; return a result dict (with the last request's SQL)."""
    samples, queries, status = [], 0, None
    for run in range(WARMUP + RUNS):
        if before is not None:
            before()
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url, headers=headers or {})
            elapsed = (time.perf_counter() - start) * 1000
        status = response.status_code
        if status == 404 and run == 0:
            return {"page": name, "url": url, "status": "not available"}
        if run >= WARMUP:
            samples.append(elapsed)
            queries = len(captured)
    return {
        "page": name,
        "url": url,
        "status": status,
        "queries": queries,
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(percentile(samples, 0.95), 1),
        "sql": [query["sql"] for query in captured.captured_queries],
    }


def pick_incidents(user):
    """Return (an open incident with about ten events, the open one with thousands)."""
    from django.db.models import Count

    from incidents.queries import incident_list_visible_to

    visible = incident_list_visible_to(user).open().exclude(status="triage")
    counted = visible.annotate(events=Count("timeline"))
    small = counted.filter(events__gte=8, events__lte=12).order_by("pk").first()
    big = counted.order_by("-events").first()
    return small, big


def search_plans(results):
    """EXPLAIN ANALYZE each search request's queries that filter with LIKE."""
    plans = []
    for result in results:
        if "search" not in result["page"] and "?q=" not in result["url"]:
            continue
        for sql in result.get("sql", []):
            if "LIKE UPPER" not in sql or "incidents_incident" not in sql:
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                lines = [line for (line,) in cursor.fetchall()]
            text = "\n".join(lines)
            plans.append(
                {
                    "page": result["page"],
                    "sql": sql[:300],
                    "uses_trigram_index": "_trgm" in text,
                    "seq_scan_on_incidents": bool(
                        re.search(r"Seq Scan on incidents_incident\b", text)
                    ),
                    "plan": lines,
                }
            )
    return plans


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    parser.add_argument("--plans", action="store_true", help="print the full search plans")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench/console.py measures PostgreSQL: set DATABASE_URL.")
    setup_test_environment()
    generated = console_data.ensure_data()

    from django.contrib.auth import get_user_model

    from incidents import services

    user = get_user_model().objects.get(username=console_data.BENCH_USERNAME)
    client = Client()
    client.force_login(user)
    small, big = pick_incidents(user)
    reference = small.reference if small else "INC-2025-0042"
    # A key of its own per run (only its hash is stored), expiring the next day.
    _, plaintext = services.api_key_create(user=user, name="bench-console", expires_in_days=1)
    bearer = {"Authorization": f"Bearer {plaintext}"}

    changelist = "/admin/incidents/incident/"
    pages = [
        ("dashboard", "/admin/", {}),
        ("incident list (default)", changelist, {}),
        ("incident list, needs attention", f"{changelist}?attention=yes", {}),
        ("incident list, mine", f"{changelist}?mine=yes", {}),
        ("incident list, overdue", f"{changelist}?overdue=yes", {}),
        ("incident list, no commander", f"{changelist}?commander=none", {}),
        ("incident list, all (open and closed)", f"{changelist}?open=all", {}),
        (f"incident list, search {SEARCH_WORD!r}", f"{changelist}?q={SEARCH_WORD}", {}),
        (f"incident list, search {reference}", f"{changelist}?q={reference}&open=all", {}),
    ]
    for label, incident in (("~10 events", small), ("thousands of events", big)):
        if incident is None:
            continue
        events = incident.timeline.count()
        pages.append(
            (
                f"war room, {label} ({events:,})",
                f"{changelist}{incident.pk}/war-room/",
                {},
            )
        )
    if small is not None:
        pages.append(("incident change page", f"{changelist}{small.pk}/change/", {}))
    for name, url in (
        ("status page", "/status/"),
        ("status JSON", "/status.json"),
        ("status feed", "/status/feed/"),
    ):
        pages.append((f"{name}, uncached", url, {"before": cache.clear}))
        pages.append((f"{name}, cached", url, {}))
    pages.append(
        (f"API search {SEARCH_WORD!r}", f"/api/v1/incidents/?search={SEARCH_WORD}",
         {"headers": bearer})
    )  # fmt: skip
    pages.append(
        (f"API search {reference}", f"/api/v1/incidents/?search={reference}", {"headers": bearer})
    )
    pages.append(("API list (no filter)", "/api/v1/incidents/", {"headers": bearer}))

    results = []
    print("| page | answer | queries | median | p95 |\n|---|---|---|---|---|", flush=True)
    for name, url, options in pages:
        result = measure(client, name, url, **options)
        results.append(result)
        if result["status"] == "not available":
            print(f"| {name} | not available | | | |", flush=True)
        else:
            print(
                f"| {name} | {result['status']} | {result['queries']} "
                f"| {result['median_ms']:.1f} ms | {result['p95_ms']:.1f} ms |",
                flush=True,
            )

    plans = search_plans(results)
    print("\nSearch plans (EXPLAIN ANALYZE of each LIKE query):")
    for plan in plans:
        verdict = "trigram index" if plan["uses_trigram_index"] else "NO trigram index"
        if plan["seq_scan_on_incidents"]:
            verdict += ", Seq Scan on incidents_incident"
        timing = next((line for line in plan["plan"] if "Execution Time" in line), "")
        print(f"- {plan['page']}: {verdict}; {timing.strip()}")
        if args.plans:
            print("    " + "\n    ".join(plan["plan"]))

    if args.json:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            (version,) = cursor.fetchone()
        for result in results:
            result.pop("sql", None)
        Path(args.json).write_text(
            json.dumps(
                {
                    "postgresql": version,
                    "cores": os.cpu_count(),
                    "generated_seconds": generated,
                    "warmup": WARMUP,
                    "runs": RUNS,
                    "results": results,
                    "search_plans": plans,
                },
                indent=2,
                default=str,
            )
        )
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
