"""One page, end to end: written by the engine, queued through the broker, delivered by a
real `manage.py qcluster` process to a real HTTP receiver on 127.0.0.1 — the person's
webhook contact method — with the acknowledge link in it."""

import re
import subprocess
import sys
import time

import pytest
from django.test import override_settings
from django_q.conf import Conf

from incidents import extensions
from incidents.models import Notification
from oncall.services.paging import ack_link, page_from_token, stop_pages_on_transition
from oncall.vocabulary import Event
from tests.incidents.test_notifications import Receiver
from tests.incidents.test_qcluster import ROOT, cluster_environment, stop


# Rows must be committed for the cluster, another process, to see them. The receiver is
# on this machine: allowed as on a closed network.
@pytest.mark.django_db(transaction=True)
@override_settings(ONCALL_PRIVATE_WEBHOOKS=True)
def test_a_real_cluster_delivers_a_page_to_the_persons_webhook(
    tmp_path, monkeypatch, declare, responder, make_method, make_rule, page_by_hand
):
    with Receiver() as receiver, extensions.only(stop_pages_on_transition):
        make_rule(make_method(responder, "webhook", receiver.url))
        incident = declare()
        # The test settings run tasks inline; from here on they go through the broker
        # (the database) to the cluster, as in production.
        monkeypatch.setattr(Conf, "SYNC", False)
        [page] = page_by_hand(incident, responder, why="as technical lead").pages
        notification = Notification.objects.get(event=Event.PAGE, recipient=responder)
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
            # Polling another process's progress: no clock of ours to move.
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
    assert request.path == "/hooks/sitrep"
    body = request.json()
    assert body["event"] == "page"
    assert body["incident"]["reference"] == incident.reference
    # The link in it is this page's acknowledge link (its token carries when it was made).
    [link] = re.findall(r"Acknowledge: (\S+)", body["message"])
    prefix = ack_link(page).rsplit("/", 2)[0]
    assert link.startswith(prefix + "/")
    assert page_from_token(link.rstrip("/").rsplit("/", 1)[1]) == page
    assert "as technical lead" in body["message"]
    assert request.headers["Idempotency-Key"] == str(notification.idempotency_key)
    assert list(notification.delivery_attempts.values_list("number", "succeeded")) == [(1, True)]
