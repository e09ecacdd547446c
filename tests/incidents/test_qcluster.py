"""A real `manage.py qcluster` process, pointed at the test database, delivers a
notification to a real HTTP receiver."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

from incidents.models import ChannelKind, ChannelTarget, Notification
from tests.incidents.test_notifications import SECRET, Receiver, verify_signature

ROOT = Path(__file__).resolve().parents[2]


def cluster_environment() -> dict:
    """The production settings, aimed at this run's test database and task signing key."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SQLITE_PATH")
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        # django-q2 signs each task with SECRET_KEY: the cluster must share ours.
        SECRET_KEY=settings.SECRET_KEY,
        Q_WORKERS="1",
    )
    test_database = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        environment["SQLITE_PATH"] = test_database
    else:
        url = urlsplit(os.environ["DATABASE_URL"])
        environment["DATABASE_URL"] = url._replace(path=f"/{test_database}").geturl()
    return environment


def stop(cluster: subprocess.Popen) -> None:
    """Stop the cluster the way a process manager would; kill it if it hangs."""
    if cluster.poll() is None:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    # Its sentinel, pusher, worker and monitor share the session started for it.
    try:
        os.killpg(cluster.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    cluster.wait(timeout=15)


# Rows must be committed for another process to see them.
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_delivers_a_queued_notification(tmp_path):
    with Receiver() as receiver:
        target = ChannelTarget.objects.create(
            name="ops", kind=ChannelKind.WEBHOOK, address=receiver.url, secret=SECRET
        )
        notification = Notification.objects.create(
            event=Notification.Event.DECLARED,
            channel=ChannelKind.WEBHOOK,
            target=target,
            address=receiver.url,
            subject="INC-2026-0001: Checkout returns 502",
            body="",
            payload={"event": "declared", "incident": {"reference": "INC-2026-0001"}},
            next_attempt_at=timezone.now(),
        )
        # The test settings run tasks inline; this one goes through the broker (the
        # database) to the cluster, as in production.
        async_task("incidents.tasks.deliver_notification", notification.pk, sync=False)
        notification.refresh_from_db()
        assert notification.state == Notification.State.PENDING  # queued, not sent inline

        log = tmp_path / "qcluster.log"
        with log.open("wb") as output:
            cluster = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=cluster_environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and cluster.poll() is None:
                notification.refresh_from_db()
                if notification.state == Notification.State.DELIVERED:
                    break
                time.sleep(0.2)
        finally:
            stop(cluster)

    assert notification.state == Notification.State.DELIVERED, log.read_text()
    [request] = receiver.requests
    assert request.json()["incident"]["reference"] == "INC-2026-0001"
    assert request.headers["Idempotency-Key"] == str(notification.idempotency_key)
    assert verify_signature(request.headers["X-Sitrep-Signature"], request.body, SECRET)
    assert list(notification.delivery_attempts.values_list("number", "succeeded")) == [(1, True)]
