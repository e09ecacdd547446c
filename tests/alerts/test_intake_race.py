"""Never doubled: real concurrent requests carrying the same new alert, or new alerts of
one group, make one alert and one incident (PostgreSQL; SQLite serialises writers).

The requests go over HTTP to the live test server, each handled in its own thread with
its own database connection, all released at once by a barrier."""

import json
import threading

import httpx
import pytest
from django.db import connection

from alerts.models import Alert, AlertGroup
from alerts.services import source_create
from incidents.models import Incident, TimelineEvent

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite serialises writers: concurrency is proven on PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True),
]

WORKERS = 8


@pytest.fixture
def secret(default_rules):
    _, secret = source_create(name="prometheus", kind="alertmanager")
    return secret


def alertmanager(*labels_list):
    return json.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "sitrep",
            "groupKey": "{}:{}",
            "alerts": [
                {"status": "firing", "labels": labels, "annotations": {}} for labels in labels_list
            ],
        }
    )


def post_at_once(live_server, secret, bodies):
    """POST every body in its own thread, all released together; return the answers."""
    url = f"{live_server.url}/api/v1/alerts/alertmanager/"
    barrier = threading.Barrier(len(bodies))
    answers = [None] * len(bodies)

    def post(index):
        with httpx.Client(timeout=30) as client:
            barrier.wait(timeout=30)
            response = client.post(
                url,
                content=bodies[index],
                headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            )
            answers[index] = (response.status_code, response.json())

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers), "a request did not finish"
    return answers


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_requests_with_one_new_fingerprint_make_one_alert_and_one_incident(
    live_server, secret, round_
):
    body = alertmanager({"alertname": f"QueueBacklog{round_}", "queue": "mail"})

    answers = post_at_once(live_server, secret, [body] * WORKERS)

    assert [status for status, _ in answers] == [200] * WORKERS, answers
    assert sum(answer["new"] for _, answer in answers) == 1
    assert sum(answer["repeated"] for _, answer in answers) == WORKERS - 1
    opened = [ref for _, answer in answers for ref in answer["incidents_opened"]]
    assert len(opened) == 1
    alert = Alert.objects.get()
    assert alert.times_received == WORKERS
    assert AlertGroup.objects.count() == 1
    assert Incident.objects.get().reference == opened[0]
    assert alert.incident.reference == opened[0]
    assert TimelineEvent.objects.filter(kind="alert").count() == 1


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_new_alerts_of_one_group_key_join_one_incident(live_server, secret, round_):
    bodies = [
        alertmanager({"alertname": f"NodeDown{round_}", "instance": f"node-{i}"})
        for i in range(WORKERS)
    ]

    answers = post_at_once(live_server, secret, bodies)

    assert [status for status, _ in answers] == [200] * WORKERS, answers
    assert all(answer["new"] == 1 for _, answer in answers)
    opened = [ref for _, answer in answers for ref in answer["incidents_opened"]]
    assert len(opened) == 1
    joined = {ref for _, answer in answers for ref in answer["incidents_joined"]}
    assert joined <= set(opened)
    assert Alert.objects.count() == WORKERS
    assert AlertGroup.objects.count() == 1
    incident = Incident.objects.get()
    assert incident.reference == opened[0]
    assert set(Alert.objects.values_list("incident", flat=True)) == {incident.pk}
    assert TimelineEvent.objects.filter(incident=incident, kind="alert").count() == WORKERS


def test_concurrent_payloads_each_holding_all_the_new_alerts(live_server, secret):
    # The same group of alerts in every request (Alertmanager resending from two
    # replicas): locks taken in one order, so no deadlock, and nothing doubled.
    labels = [{"alertname": "DiskFull", "instance": f"db-{i}"} for i in range(5)]
    bodies = [alertmanager(*(labels if i % 2 else reversed(labels))) for i in range(WORKERS)]

    answers = post_at_once(live_server, secret, bodies)

    assert [status for status, _ in answers] == [200] * WORKERS, answers
    assert sum(answer["new"] for _, answer in answers) == 5
    assert Alert.objects.count() == 5
    assert sum(alert.times_received for alert in Alert.objects.all()) == 5 * WORKERS
    assert Incident.objects.count() == 1
    assert AlertGroup.objects.count() == 1


def test_a_payload_being_retried_does_not_hold_up_its_sources_heartbeat(secret, monkeypatch):
    # The sweeper locks the payload it retries, not its source: a heartbeat (an UPDATE
    # of the source row) or another worker's retry of the same source must not wait.
    from django.db import transaction
    from django.utils import timezone

    from alerts.models import AlertPayload, AlertSource
    from alerts.services import heartbeat_heard, intake, payload_retry

    source = AlertSource.objects.get()
    payload = AlertPayload.objects.create(
        source=source,
        body=alertmanager({"alertname": "Stuck"}),
        status=AlertPayload.Status.RECEIVED,
        attempts=1,
    )
    entered, release = threading.Event(), threading.Event()
    real = intake.ingest

    def slow_ingest(**kwargs):
        entered.set()
        release.wait(timeout=10)
        return real(**kwargs)

    monkeypatch.setattr(intake, "ingest", slow_ingest)
    done = []

    def retry():
        try:
            done.append(payload_retry(payload))
        finally:
            connection.close()

    worker = threading.Thread(target=retry)
    worker.start()
    try:
        assert entered.wait(timeout=10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            heartbeat_heard(source, ping=True, now=timezone.now())
    finally:
        release.set()
        worker.join(timeout=30)

    assert done == [True]
    assert AlertSource.objects.get().last_heartbeat_at is not None
    assert AlertPayload.objects.get().status == AlertPayload.Status.PROCESSED
