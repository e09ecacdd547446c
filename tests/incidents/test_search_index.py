"""Searching incidents by reference, title and summary: served by trigram indexes on
PostgreSQL (migration 0016), a plain scan on SQLite, the same answers on both."""

import importlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.models import Incident, Status

CHANGELIST = "/admin/incidents/incident/"
API = "/api/v1/incidents/"
TRIGRAM_INDEXES = {
    "incident_reference_trgm": "upper((reference)::text) gin_trgm_ops",
    "incident_title_trgm": "upper((title)::text) gin_trgm_ops",
    "incident_summary_trgm": "upper(summary) gin_trgm_ops",
}
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL's"
)


def bulk_incidents(severity, incident_type, count):
    """Insert `count` closed incidents in one statement, titled and summarised apart."""
    now = timezone.now()
    Incident.objects.bulk_create(
        Incident(
            reference=f"INC-2024-{number:04d}",
            title=f"Bulk incident {number} on service {number % 40}",
            summary=f"Filler summary number {number}.",
            severity=severity,
            incident_type=incident_type,
            status=Status.CLOSED,
            started_at=now - timedelta(days=number % 700, hours=1),
            detected_at=now - timedelta(days=number % 700),
            declared_at=now - timedelta(days=number % 700),
        )
        for number in range(1, count + 1)
    )


def like_queries(client, url) -> list[str]:
    """Return the SQL of the queries that request ran with a LIKE on incidents."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return [
        query["sql"]
        for query in captured.captured_queries
        if "LIKE" in query["sql"] and "incidents_incident" in query["sql"]
    ]


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(line for (line,) in cursor.fetchall())


@pytest.mark.django_db
def test_admin_search_finds_by_reference_title_word_and_summary(commander_client, declare):
    by_title = declare(title="Replication lag on orders")
    by_summary = declare(title="Queue backlog", summary="The payments REPLICA fell behind")
    other = declare(title="Checkout returns 502")

    def found(term):
        response = commander_client.get(CHANGELIST, {"q": term, "open": "all"})
        return {incident.reference for incident in response.context["cl"].result_list}

    assert found("replica") == {by_title.reference, by_summary.reference}
    assert found(other.reference) == {other.reference}
    assert found("no such words") == set()


@pytest.mark.django_db
def test_api_search_is_case_insensitive_over_the_three_fields(commander_client, declare):
    wanted = declare(title="Certificate expiry on the CDN")
    declare(title="Checkout returns 502", summary="Unrelated")
    for term in ("certificate", "CDN", wanted.reference.lower()):
        body = commander_client.get(API, {"search": term}).json()
        assert [row["reference"] for row in body["results"]] == [wanted.reference], term


@pytest.mark.postgres
@on_postgresql
@pytest.mark.django_db
def test_trigram_indexes_exist_on_the_icontains_expressions():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incidents_incident'"
        )
        found = dict(cursor.fetchall())
    for name, expression in TRIGRAM_INDEXES.items():
        assert name in found
        assert "USING gin" in found[name] and expression in found[name]


@pytest.mark.postgres
@on_postgresql
@pytest.mark.django_db
@pytest.mark.parametrize("url", [f"{CHANGELIST}?q=1042&open=all", f"{API}?search=1042"])
def test_admin_and_api_search_use_the_trigram_indexes(commander_client, sev1, outage, url):
    bulk_incidents(sev1, outage, 3000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_incident")
    queries = like_queries(commander_client, url)
    assert queries, "the search ran no LIKE query"
    with connection.cursor() as cursor:
        # On a table this small the planner rightly prefers reading it whole (or walking
        # another index); with those paths priced out it is left with bitmap scans, and
        # it can only use the trigram indexes if their expressions are exactly the SQL
        # Django generated; otherwise it falls back to the (disabled) sequential scan.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    for sql in queries:
        text = plan(sql)
        assert "Bitmap Index Scan on incident_title_trgm" in text, text
        assert "Bitmap Index Scan on incident_summary_trgm" in text, text
        assert "Bitmap Index Scan on incident_reference_trgm" in text, text
        assert not re.search(r"Seq Scan on incidents_incident\b", text), text


@pytest.mark.postgres
@on_postgresql
@pytest.mark.django_db
def test_search_migration_reverses_and_reapplies():
    from django.apps import apps

    migration = importlib.import_module("incidents.migrations.0016_search_trigram")

    def index_names():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)",
                [list(TRIGRAM_INDEXES)],
            )
            return {name for (name,) in cursor.fetchall()}

    with connection.schema_editor(atomic=False) as editor:
        migration.drop_indexes(apps, editor)
    assert index_names() == set()
    with connection.schema_editor(atomic=False) as editor:
        migration.create_indexes(apps, editor)
    assert index_names() == set(TRIGRAM_INDEXES)
