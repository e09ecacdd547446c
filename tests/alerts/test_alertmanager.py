"""A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) takes alerts on
its own API and posts its webhook, with the source's bearer secret, to the live test
server: one triage incident per group, repeats deduplicated, resolutions close the alerts.

`make test` installs the package when it is missing (as it does Chromium)."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertGroup, AlertPayload
from alerts.services import rule_save, source_create
from alerts.vocabulary import Kind
from incidents.models import Incident, Status

ALERTMANAGER = (
    os.environ.get("ALERTMANAGER_PATH")
    or shutil.which("prometheus-alertmanager")
    or "/usr/bin/prometheus-alertmanager"
)
DEADLINE = 30  # seconds for any one thing Alertmanager is waited for

pytestmark = pytest.mark.skipif(
    not os.access(ALERTMANAGER, os.X_OK),
    reason=f"{ALERTMANAGER} is not installed (make test installs prometheus-alertmanager)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Alertmanager:
    """One Alertmanager process on 127.0.0.1, clustering off, its state in a tmp dir."""

    def __init__(self, directory: Path, config: dict):
        self.directory = directory
        self.url = f"http://127.0.0.1:{free_port()}"
        # JSON is YAML: no YAML library needed to write the configuration.
        (directory / "alertmanager.yml").write_text(json.dumps(config, indent=2))
        self.log = directory / "alertmanager.log"
        self.process = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={self.directory / 'alertmanager.yml'}",
                    f"--storage.path={self.directory / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until(self.ready, "Alertmanager to be ready", self)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Alertmanager exited ({self.process.returncode}):\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def post_alerts(self, alerts: list[dict]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, response.read()

    def alerts(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return json.load(response)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def wait_until(condition, what: str, alertmanager: Alertmanager, timeout: float = DEADLINE):
    """Poll `condition` until it returns something true; fail after `timeout` seconds
    with Alertmanager's log, which says what it sent and what it was answered."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Gave up after {timeout} s waiting for {what}.\n"
                f"Alertmanager's log:\n{alertmanager.tail()}"
            )
        time.sleep(0.1)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def alertmanager_source(transactional_db, default_policy):
    source, secret = source_create(name="prometheus", kind="alertmanager")
    return source, secret


@pytest.fixture
def alertmanager(tmp_path, live_server, alertmanager_source):
    """A running Alertmanager whose one receiver posts to the live server as the source.
    Stopped before the live server and the database go away."""
    _, secret = alertmanager_source
    config = {
        "route": {
            "receiver": "sitrep",
            "group_by": ["alertname", "service"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "2s",
        },
        "receivers": [
            {
                "name": "sitrep",
                "webhook_configs": [
                    {
                        "url": f"{live_server.url}/api/v1/alerts/alertmanager/",
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": secret}},
                    }
                ],
            }
        ],
    }
    manager = Alertmanager(tmp_path, config)
    try:
        manager.start()
        yield manager
    finally:
        manager.stop()


def high_error_rate(instance: str, starts_at: datetime, ends_at: datetime | None = None) -> dict:
    alert = {
        "labels": {
            "alertname": "HighErrorRate",
            "service": "api",
            "instance": instance,
            "severity": "high",
        },
        "annotations": {"summary": f"5xx on {instance}", "error_rate": "0.5"},
        "startsAt": rfc3339(starts_at),
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=job%3Aerrors%3Arate5m",
    }
    if ends_at is not None:
        alert["endsAt"] = rfc3339(ends_at)
    return alert


def queue_backlog(starts_at: datetime, ends_at: datetime | None = None) -> dict:
    alert = {
        "labels": {"alertname": "QueueBacklog", "service": "worker", "instance": "worker-1:9100"},
        "annotations": {"summary": "Jobs are piling up", "queue_depth": "12000"},
        "startsAt": rfc3339(starts_at),
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=queue_depth",
    }
    if ends_at is not None:
        alert["endsAt"] = rfc3339(ends_at)
    return alert


def test_a_real_alertmanager_opens_one_triage_incident_per_group_and_resolves(
    alertmanager, alertmanager_source, sev2, outage, api_service
):
    source, _ = alertmanager_source
    # Its own rule, not the seeded ones: the test states what it relies on. Sustained
    # firing included: the alerts began ten minutes ago, the rule wants five.
    rule = rule_save(
        name="Alertmanager test rule",
        priority=1,
        conditions=[
            {
                "subject": "label",
                "key": "alertname",
                "operator": "matches",
                "value": "HighErrorRate|QueueBacklog",
            }
        ],
        firing_for=timedelta(minutes=5),
        severity=sev2,
        incident_type=outage,
        group_by="{alertname}/{service}",
        title_template="{alertname} on {service}",
    )
    began = timezone.now() - timedelta(minutes=10)
    firing = [
        high_error_rate("api-1:8080", began),
        high_error_rate("api-2:8080", began),
        queue_backlog(began),
    ]
    alertmanager.post_alerts(firing)

    # Alertmanager's group_wait, then its repeat_interval: every alert taken in once and
    # then heard again, without a second row, group or incident.
    def taken_in_and_repeated():
        alerts = list(Alert.objects.filter(source=source))
        return len(alerts) == 3 and all(alert.times_received >= 2 for alert in alerts)

    wait_until(taken_in_and_repeated, "three alerts, each received at least twice", alertmanager)

    alerts = list(Alert.objects.filter(source=source).order_by("labels__instance"))
    assert len({alert.fingerprint for alert in alerts}) == 3
    # The fingerprints are Alertmanager's own.
    assert {alert.fingerprint for alert in alerts} == {
        alert["fingerprint"] for alert in alertmanager.alerts()
    }
    assert all(alert.status == Alert.Status.FIRING for alert in alerts)
    assert all(alert.rule == rule for alert in alerts)
    api_alert = next(alert for alert in alerts if alert.labels["alertname"] == "HighErrorRate")
    assert api_alert.metrics == {"error_rate": 0.5}
    assert api_alert.starts_at == datetime.fromisoformat(firing[0]["startsAt"])

    groups = {group.key.split(":", 1)[1]: group for group in AlertGroup.objects.all()}
    assert sorted(groups) == ["HighErrorRate/api", "QueueBacklog/worker"]
    assert Incident.objects.count() == 2
    api_incident = groups["HighErrorRate/api"].incident
    worker_incident = groups["QueueBacklog/worker"].incident
    assert api_incident.status == Status.TRIAGE
    assert worker_incident.status == Status.TRIAGE
    assert api_incident.title == "HighErrorRate on api"
    assert api_incident.severity == sev2
    assert list(api_incident.services.all()) == [api_service]
    assert sorted(a.labels["instance"] for a in api_incident.alerts.all()) == [
        "api-1:8080",
        "api-2:8080",
    ]
    assert [a.labels["instance"] for a in worker_incident.alerts.all()] == ["worker-1:9100"]
    # Each alert fired once on the timeline; the repeats cost no event.
    fired = api_incident.timeline.filter(kind=Kind.ALERT, details__event="fired")
    assert fired.count() == 2
    assert worker_incident.timeline.filter(kind=Kind.ALERT, details__event="fired").count() == 1

    # Every notification kept raw, as Alertmanager sent it.
    payloads = list(AlertPayload.objects.filter(source=source).order_by("received_at"))
    assert len(payloads) >= 4  # each group's first notification and at least one repeat
    assert {payload.status for payload in payloads} == {AlertPayload.Status.PROCESSED}
    first = json.loads(payloads[0].body)
    assert first["version"] == "4"
    assert first["receiver"] == "sitrep"
    assert first["status"] == "firing"
    assert set(first["groupLabels"]) == {"alertname", "service"}

    # Resolve: the same alerts, ended a moment ago. Alertmanager sends the resolutions.
    ended = timezone.now() - timedelta(seconds=1)
    alertmanager.post_alerts(
        [
            high_error_rate("api-1:8080", began, ended),
            high_error_rate("api-2:8080", began, ended),
            queue_backlog(began, ended),
        ]
    )

    def all_resolved():
        return (
            Alert.objects.filter(source=source, status=Alert.Status.RESOLVED).count() == 3
            and AlertGroup.objects.filter(all_resolved_at__isnull=False).count() == 2
        )

    wait_until(all_resolved, "the three alerts to resolve", alertmanager)

    assert Alert.objects.filter(source=source).count() == 3  # closed, not duplicated
    resolved = Alert.objects.get(pk=api_alert.pk)
    assert resolved.resolved_at is not None
    assert resolved.ends_at is not None
    assert api_incident.timeline.filter(kind=Kind.ALERT, details__event="resolved").count() == 2
    assert api_incident.timeline.filter(
        kind=Kind.ALERT, details__event="all_resolved", summary="All 2 alerts resolved"
    ).exists()
    assert worker_incident.timeline.filter(
        kind=Kind.ALERT, details__event="all_resolved", summary="The alert resolved"
    ).exists()
    assert Incident.objects.count() == 2
    last = json.loads(AlertPayload.objects.filter(source=source).latest("received_at").body)
    assert last["status"] == "resolved"
