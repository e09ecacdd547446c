"""Concurrent retries with one Idempotency-Key create exactly one incident (PostgreSQL)."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from incidents import services
from incidents.models import Incident, TimelineEvent


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real concurrency")
@pytest.mark.django_db(transaction=True)
def test_simultaneous_retries_with_one_key_create_one_incident(commander, sev1, outage):
    _, plaintext = services.api_key_create(user=commander, name="monitoring")
    body = {"title": "Queue backlog", "severity": "critical", "type": "outage"}
    workers = 4
    barrier = threading.Barrier(workers)
    results, lock = [], threading.Lock()

    def post():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
            barrier.wait(timeout=30)
            response = client.post(
                "/api/v1/incidents/", body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1"
            )
            with lock:
                results.append((response.status_code, response.json().get("reference")))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == workers
    assert {status for status, _ in results} == {201}
    assert len({reference for _, reference in results}) == 1
    assert Incident.objects.count() == 1
    assert TimelineEvent.objects.filter(kind="declared").count() == 1
