"""The notification outbox: rows written with their cause, delivered over real HTTP and
email with retries, backoff, crash recovery and the communication matrix."""

import hashlib
import hmac
import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from incidents import channels, notifications, services
from incidents.errors import StateConflict
from incidents.models import (
    Audience,
    ChannelKind,
    ChannelTarget,
    DeliveryAttempt,
    Incident,
    Notification,
    Role,
    Severity,
    Source,
    StakeholderGroup,
    Status,
)
from incidents.schedules import ensure_schedules

State = Notification.State
Event = Notification.Event
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET = "s3cret"

# The core's outbox and matrix, counted without the apps that add messages of their own
# (on-call pages the rota on every declaration: tests/oncall).
pytestmark = pytest.mark.usefixtures("core_only")


# --- a real HTTP receiver -------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: Message  # case-insensitive, as the wire is
    body: bytes
    answered: int

    def json(self):
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread. It records every request and answers
    with the next status of its script, 200 once the script has run out."""

    def __init__(self, *statuses: int, port: int = 0, cookie: str = ""):
        self.script = list(statuses)
        self.cookie = cookie  # sent as Set-Cookie with every answer, when given
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.requests.append(Received(self.path, self.headers, body, status))
                self.send_response(status)
                if receiver.cookie:
                    self.send_header("Set-Cookie", receiver.cookie)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass  # keep pytest's output for failures

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/sitrep"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (then 200 again)."""
        self.script.extend(statuses)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def free_port() -> int:
    """Return a port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- builders -------------------------------------------------------------------------


def group(slug: str) -> StakeholderGroup:
    return StakeholderGroup.objects.get(slug=slug)


def add_target(
    address: str,
    *,
    to: str = "on-call-engineers",
    kind: str = ChannelKind.WEBHOOK,
    secret: str = SECRET,
    name: str | None = None,
    enabled: bool = True,
) -> ChannelTarget:
    target = ChannelTarget.objects.create(
        name=name or f"{kind} {address}",
        kind=kind,
        address=address,
        secret=secret,
        enabled=enabled,
    )
    group(to).targets.add(target)
    return target


def add_member(django_user_model, username: str, *slugs: str):
    user = django_user_model.objects.create_user(username=username, email=f"{username}@example.com")
    for slug in slugs:
        group(slug).members.add(user)
    return user


def addresses(incident: Incident) -> set[str]:
    return set(Notification.objects.filter(incident=incident).values_list("address", flat=True))


def verify_signature(header: str, body: bytes, secret: str) -> bool:
    """Check X-Sitrep-Signature the way a receiver would, without Sitrep's code."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


@pytest.fixture
def sev4(default_policy):
    return Severity.objects.get(key="SEV4")


# --- written with the cause -----------------------------------------------------------


@pytest.mark.django_db
def test_declaring_writes_one_notification_per_matrix_recipient_before_commit(
    declare, django_user_model, receiver, django_capture_on_commit_callbacks
):
    add_member(django_user_model, "erin", "executive-team")
    add_member(django_user_model, "lee", "engineering-leads")
    add_target(receiver.url)

    with django_capture_on_commit_callbacks() as callbacks:
        incident = declare()
        written = list(Notification.objects.filter(incident=incident))

    assert {(n.event, n.channel, n.address, n.state) for n in written} == {
        (Event.DECLARED, ChannelKind.EMAIL, "erin@example.com", State.PENDING),
        (Event.DECLARED, ChannelKind.EMAIL, "lee@example.com", State.PENDING),
        (Event.DECLARED, ChannelKind.WEBHOOK, receiver.url, State.PENDING),
    }
    # Delivery waits for the commit: nothing went out while the transaction was open.
    assert len(callbacks) == 1
    assert receiver.requests == []
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_declaration_that_rolls_back_leaves_no_notification(
    declare, commander, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)

    # The notifications are written; then the transaction they belong to fails.
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(DatabaseError),
        transaction.atomic(),
    ):
        declare(commander=commander)
        assert Notification.objects.exists()
        raise DatabaseError("lost")

    assert Incident.objects.count() == 0
    assert Notification.objects.count() == 0
    assert callbacks == []
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_triage_incident_notifies_nobody_until_it_is_declared(
    declare, django_user_model, commander
):
    add_member(django_user_model, "oscar", "on-call-engineers")

    # Raising it pages only the first escalation level (tests/incidents/test_triage.py).
    incident = declare(triage=True)
    assert not stakeholder_rows().exists()

    services.incident_transition(
        incident=incident, to_status=Status.DECLARED, actor=commander, source=Source.ADMIN
    )
    assert list(stakeholder_rows().values_list("event", "address")) == [
        (Event.DECLARED, "oscar@example.com")
    ]


def stakeholder_rows():
    """The outbox but for the page that raising a triage candidate sends."""
    return Notification.objects.exclude(event=Event.TRIAGE)


@pytest.mark.django_db
def test_dismissing_a_triage_incident_notifies_nobody(declare, django_user_model, commander):
    add_member(django_user_model, "oscar", "on-call-engineers")
    incident = declare(triage=True)

    services.incident_transition(
        incident=incident, to_status=Status.CANCELLED, actor=commander, source=Source.ADMIN
    )

    assert not stakeholder_rows().exists()


@pytest.mark.django_db
def test_re_rating_a_triage_incident_notifies_nobody(declare, django_user_model, commander, sev2):
    add_member(django_user_model, "oscar", "on-call-engineers")
    incident = declare(triage=True)

    services.incident_change_severity(
        incident=incident,
        severity=sev2,
        reason="smaller than it looked",
        actor=commander,
        source=Source.ADMIN,
    )

    assert not stakeholder_rows().exists()


@pytest.mark.django_db
def test_status_and_severity_changes_notify_the_matrix(declare, django_user_model, commander, sev2):
    add_member(django_user_model, "oscar", "on-call-engineers")
    incident = declare()

    services.incident_transition(
        incident=incident, to_status=Status.INVESTIGATING, source=Source.ADMIN
    )
    services.incident_change_severity(
        incident=incident,
        severity=sev2,
        reason="one region only",
        actor=commander,
        source=Source.ADMIN,
    )

    assert list(
        Notification.objects.filter(incident=incident)
        .order_by("pk")
        .values_list("event", "address", "payload__incident__severity")
    ) == [
        (Event.DECLARED, "oscar@example.com", "SEV1"),
        (Event.STATUS_CHANGED, "oscar@example.com", "SEV1"),
        (Event.SEVERITY_CHANGED, "oscar@example.com", "SEV2"),
    ]


# --- webhook delivery -----------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_posts_signed_json_with_the_idempotency_key(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        incident = declare(summary="Card payments fail at checkout.")

    notification = Notification.objects.get(incident=incident)
    [request] = receiver.requests
    assert request.path == "/hooks/sitrep"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == str(notification.idempotency_key)
    assert request.json() == {
        "event": "declared",
        "message": "Card payments fail at checkout.",
        "incident": {
            "reference": incident.reference,
            "title": "Checkout returns 502",
            "severity": "SEV1",
            "status": "declared",
            "confidential": False,
        },
    }
    signature = request.headers["X-Sitrep-Signature"]
    assert verify_signature(signature, request.body, SECRET)
    assert not verify_signature(signature, request.body, "not-the-secret")
    assert not verify_signature(signature, request.body + b" ", SECRET)
    notification.refresh_from_db()
    assert notification.state == State.DELIVERED
    assert list(notification.delivery_attempts.values_list("number", "status_code")) == [(1, 200)]


@pytest.mark.django_db
def test_the_signature_timestamp_is_the_time_of_sending(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)

    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        declare()

    header = receiver.requests[0].headers["X-Sitrep-Signature"]
    assert header.startswith(f"t={int(T0.timestamp())},v1=")


@pytest.mark.django_db
def test_a_receiver_that_fails_twice_gets_one_accepted_delivery_in_three_attempts(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)
    receiver.answer(500, 500)

    with time_machine.travel(T0, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            incident = declare()
        notification = Notification.objects.get(incident=incident)
        assert notification.state == State.PENDING
        assert notification.next_attempt_at == T0 + timedelta(seconds=30)

        clock.shift(timedelta(seconds=30))
        assert notifications.sweep() == 1
        notification.refresh_from_db()
        assert notification.state == State.PENDING
        assert notification.next_attempt_at == T0 + timedelta(seconds=30 + 60)

        clock.shift(timedelta(seconds=60))
        assert notifications.sweep() == 1

    notification.refresh_from_db()
    assert notification.state == State.DELIVERED
    assert notification.delivered_at == T0 + timedelta(seconds=90)
    assert notification.last_error == ""
    assert list(
        notification.delivery_attempts.values_list("number", "status_code", "succeeded")
    ) == [(1, 500, False), (2, 500, False), (3, 200, True)]
    assert [request.answered for request in receiver.requests] == [500, 500, 200]
    assert {request.headers["Idempotency-Key"] for request in receiver.requests} == {
        str(notification.idempotency_key)
    }
    assert notifications.sweep() == 0


@pytest.mark.django_db
def test_a_receiver_that_is_down_ends_failed_after_the_limit(
    declare, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    add_target(f"http://127.0.0.1:{free_port()}/hook")

    with time_machine.travel(T0, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            incident = declare()
        for attempts in (1, 2):
            clock.shift(notifications.retry_delay(attempts))
            assert notifications.sweep() == 1
        notification = Notification.objects.get(incident=incident)
        assert notification.state == State.FAILED

        clock.shift(timedelta(days=1))
        assert notifications.sweep() == 0  # failed for good: nobody retries it by itself

    assert notification.attempts == 3
    assert "ConnectError" in notification.last_error
    attempts = list(notification.delivery_attempts.all())
    assert [attempt.number for attempt in attempts] == [1, 2, 3]
    assert [attempt.started_at for attempt in attempts] == [
        T0,
        T0 + timedelta(seconds=30),
        T0 + timedelta(seconds=30 + 60),
    ]
    for attempt in attempts:
        assert not attempt.succeeded
        assert attempt.status_code is None
        assert "ConnectError" in attempt.error


@pytest.mark.django_db
def test_a_failed_attempt_is_not_retried_before_its_backoff(
    declare, django_capture_on_commit_callbacks
):
    add_target(f"http://127.0.0.1:{free_port()}/hook")

    with time_machine.travel(T0, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            incident = declare()
        notification = Notification.objects.get(incident=incident)

        clock.shift(timedelta(seconds=29))
        assert notifications.deliver(notification.pk) is None
        assert notifications.sweep() == 0
        assert notification.delivery_attempts.count() == 1

        clock.shift(timedelta(seconds=1))
        assert notifications.deliver(notification.pk) == State.PENDING
        assert notification.delivery_attempts.count() == 2


@pytest.mark.django_db
def test_retry_gives_a_failed_notification_a_new_round_continuing_the_attempt_numbers(
    declare, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFY_MAX_ATTEMPTS = 2
    port = free_port()
    add_target(f"http://127.0.0.1:{port}/hook")
    with time_machine.travel(T0, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            incident = declare()
        clock.shift(timedelta(seconds=30))
        notifications.sweep()
        failed = Notification.objects.get(incident=incident)
        assert failed.state == State.FAILED

        clock.shift(timedelta(hours=1))
        with Receiver(port=port) as receiver:  # the receiver is back up
            with django_capture_on_commit_callbacks(execute=True):
                retried = notifications.retry(failed)
                assert (retried.state, retried.attempts) == (State.PENDING, 0)

    retried.refresh_from_db()
    assert retried.state == State.DELIVERED
    assert retried.attempts == 1  # in this round
    assert list(retried.delivery_attempts.values_list("number", "succeeded")) == [
        (1, False),
        (2, False),
        (3, True),
    ]
    assert [request.headers["Idempotency-Key"] for request in receiver.requests] == [
        str(retried.idempotency_key)
    ]


@pytest.mark.django_db
def test_retry_refuses_a_notification_that_has_not_failed(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        incident = declare()
    delivered = Notification.objects.get(incident=incident)

    with pytest.raises(StateConflict, match="delivered, not failed"):
        notifications.retry(delivered)

    delivered.refresh_from_db()
    assert delivered.state == State.DELIVERED
    assert len(receiver.requests) == 1


def test_backoff_doubles_from_the_base_up_to_an_hour(settings):
    settings.NOTIFY_RETRY_BASE_SECONDS = 30

    delays = [notifications.retry_delay(attempts).total_seconds() for attempts in range(1, 10)]

    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


@pytest.mark.django_db
def test_a_malformed_webhook_url_is_a_recorded_failed_attempt(
    declare, django_capture_on_commit_callbacks
):
    # Passes the admin's check (it starts with http://) but the port is not a number.
    add_target("http://127.0.0.1:80a/hook")
    with time_machine.travel(T0, tick=False):
        with django_capture_on_commit_callbacks():
            incident = declare()
        notification = Notification.objects.get(incident=incident)

        assert notifications.deliver(notification.pk) == State.PENDING

    attempt = notification.delivery_attempts.get()
    assert not attempt.succeeded
    assert "port" in attempt.error


@pytest.mark.django_db
def test_a_channel_that_breaks_unexpectedly_is_a_recorded_failed_attempt(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)
    with django_capture_on_commit_callbacks():
        incident = declare()
    notification = Notification.objects.get(incident=incident)

    client = channels.http_client()
    with mock.patch.object(client, "post", side_effect=RuntimeError("bug")):
        assert notifications.deliver(notification.pk) == State.PENDING

    notification.refresh_from_db()
    assert notification.last_error == "RuntimeError: bug"
    assert notification.delivery_attempts.get().error == "RuntimeError: bug"


@pytest.mark.django_db
def test_a_cookie_a_receiver_sets_is_not_sent_back_with_later_deliveries(
    declare, django_capture_on_commit_callbacks
):
    with Receiver(cookie="sticky=server-7; Path=/") as receiver:
        add_target(receiver.url)
        with django_capture_on_commit_callbacks():
            first, second = declare(title="One"), declare(title="Two")
        for incident in (first, second):
            notification = Notification.objects.get(incident=incident)
            assert notifications.deliver(notification.pk) == State.DELIVERED

    assert [request.headers.get("Cookie") for request in receiver.requests] == [None, None]


# --- claims and crashes ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_notification_is_delivered_once_when_two_workers_are_handed_it(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)
    with django_capture_on_commit_callbacks():
        incident = declare()
    notification = Notification.objects.get(incident=incident)

    assert notifications.deliver(notification.pk) == State.DELIVERED
    assert notifications.deliver(notification.pk) is None

    assert len(receiver.requests) == 1
    assert notification.delivery_attempts.count() == 1


@pytest.mark.django_db
def test_a_notification_another_worker_is_sending_is_left_to_it(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)
    with django_capture_on_commit_callbacks():
        incident = declare()
    notification = Notification.objects.get(incident=incident)
    Notification.objects.filter(pk=notification.pk).update(
        state=State.SENDING, claimed_at=notification.created_at
    )

    assert notifications.deliver(notification.pk) is None

    assert receiver.requests == []
    assert not DeliveryAttempt.objects.exists()
    notification.refresh_from_db()
    assert notification.state == State.SENDING


@pytest.mark.django_db
def test_sweep_hands_out_again_what_a_dead_worker_held_and_leaves_fresh_claims_alone(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url + "/stale", name="stale")
    add_target(receiver.url + "/fresh", name="fresh")
    with time_machine.travel(T0, tick=False):
        with django_capture_on_commit_callbacks():
            incident = declare()
        rows = Notification.objects.filter(incident=incident)
        stale = rows.get(address__endswith="/stale")
        fresh = rows.get(address__endswith="/fresh")
        claimed = T0 - notifications.STALE_CLAIM - timedelta(seconds=1)
        Notification.objects.filter(pk=stale.pk).update(state=State.SENDING, claimed_at=claimed)
        Notification.objects.filter(pk=fresh.pk).update(
            state=State.SENDING, claimed_at=T0 - timedelta(seconds=10)
        )

        assert notifications.sweep() == 1

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.state == State.DELIVERED
    assert (fresh.state, fresh.claimed_at) == (State.SENDING, T0 - timedelta(seconds=10))
    assert [request.path for request in receiver.requests] == ["/hooks/sitrep/stale"]


@pytest.mark.django_db
def test_a_crash_between_sending_and_recording_resends_with_the_same_key(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url)
    with time_machine.travel(T0, tick=False) as clock:
        with django_capture_on_commit_callbacks():
            incident = declare()
        notification = Notification.objects.get(incident=incident)
        with (
            mock.patch.object(DeliveryAttempt, "save", side_effect=DatabaseError("gone away")),
            pytest.raises(DatabaseError),
        ):
            notifications.deliver(notification.pk)
        notification.refresh_from_db()
        assert notification.state == State.SENDING
        assert notifications.sweep() == 0  # the worker may still be alive

        clock.shift(notifications.STALE_CLAIM + timedelta(seconds=1))
        assert notifications.sweep() == 1

    notification.refresh_from_db()
    assert notification.state == State.DELIVERED
    assert [request.headers["Idempotency-Key"] for request in receiver.requests] == [
        str(notification.idempotency_key)
    ] * 2


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real concurrency")
@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_same_notifications_deliver_each_once(receiver):
    rows = [
        Notification.objects.create(
            event=Event.ESCALATION,
            channel=ChannelKind.WEBHOOK,
            address=receiver.url,
            subject="race",
            body="race",
            payload={"n": n},
            next_attempt_at=timezone.now(),
        )
        for n in range(5)
    ]
    workers = 4
    barrier = threading.Barrier(workers)
    results, lock = [], threading.Lock()

    def work():
        try:
            barrier.wait(timeout=30)
            for row in rows:
                state = notifications.deliver(row.pk)
                with lock:
                    results.append(state)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert Counter(results) == {State.DELIVERED: 5, None: 15}
    assert sorted(request.json()["n"] for request in receiver.requests) == [0, 1, 2, 3, 4]
    assert DeliveryAttempt.objects.count() == 5


# --- other channels -------------------------------------------------------------------


@pytest.mark.django_db
def test_slack_gets_the_subject_and_body_as_text(
    declare, receiver, django_capture_on_commit_callbacks
):
    add_target(receiver.url, kind=ChannelKind.SLACK, secret="")

    with django_capture_on_commit_callbacks(execute=True):
        incident = declare()

    notification = Notification.objects.get(incident=incident)
    [request] = receiver.requests
    assert list(request.json()) == ["text"]
    assert request.json()["text"].startswith(f"*CRITICAL {incident.reference}: ")
    assert notification.subject in request.json()["text"]
    assert request.headers["Idempotency-Key"] == str(notification.idempotency_key)


@pytest.mark.django_db
def test_email_uses_the_critical_template_for_sev1(
    declare, django_user_model, django_capture_on_commit_callbacks
):
    add_member(django_user_model, "erin", "executive-team")

    with django_capture_on_commit_callbacks(execute=True):
        incident = declare()

    notification = Notification.objects.get(incident=incident)
    [email] = mail.outbox
    assert email.to == ["erin@example.com"]
    assert email.subject == f"CRITICAL {incident.reference}: Checkout returns 502"
    assert "A critical incident is in progress" in email.body
    assert email.extra_headers["X-Sitrep-Idempotency-Key"] == str(notification.idempotency_key)
    notification.refresh_from_db()
    assert notification.state == State.DELIVERED


@pytest.mark.django_db
def test_email_below_sev1_uses_the_incident_template(
    declare, django_user_model, sev2, django_capture_on_commit_callbacks
):
    add_member(django_user_model, "erin", "executive-team")

    with django_capture_on_commit_callbacks(execute=True):
        incident = declare(severity=sev2, customer_impact="Slow checkout in the EU")

    [email] = mail.outbox
    assert email.subject == f"[SEV2] {incident.reference}: Checkout returns 502"
    assert "Impact: Slow checkout in the EU" in email.body


@pytest.mark.django_db
def test_the_critical_notification_names_the_commander_given_at_declaration(
    declare, django_user_model, commander
):
    add_member(django_user_model, "erin", "executive-team")

    incident = declare(commander=commander)

    notification = Notification.objects.get(incident=incident, event=Event.DECLARED)
    assert "Commander: alice" in notification.body


@pytest.mark.django_db
def test_times_labelled_utc_in_messages_are_utc(declare, django_user_model, sev2, settings):
    settings.TIME_ZONE = "America/New_York"
    add_member(django_user_model, "erin", "executive-team")

    with time_machine.travel(T0, tick=False):
        incident = declare(severity=sev2)

    body = Notification.objects.get(incident=incident).body
    assert "Started: 2026-03-02 09:00 UTC" in body


# --- the communication matrix ---------------------------------------------------------


@pytest.mark.django_db
def test_a_sev4_does_not_reach_the_executive_team_but_a_sev1_does(
    declare, django_user_model, sev1, sev4
):
    add_member(django_user_model, "erin", "executive-team")
    add_member(django_user_model, "oscar", "on-call-engineers")

    low = declare(severity=sev4)
    critical = declare(severity=sev1)

    assert addresses(low) == {"oscar@example.com"}
    assert addresses(critical) == {"erin@example.com", "oscar@example.com"}


@pytest.mark.django_db
def test_someone_in_two_groups_is_told_once(declare, django_user_model, receiver):
    add_member(django_user_model, "lee", "engineering-leads", "on-call-engineers")
    shared = add_target(receiver.url, to="engineering-leads")
    group("customer-support").targets.add(shared)

    incident = declare()

    assert sorted(
        Notification.objects.filter(incident=incident).values_list("channel", "address")
    ) == [(ChannelKind.EMAIL, "lee@example.com"), (ChannelKind.WEBHOOK, receiver.url)]


@pytest.mark.django_db
def test_a_confidential_incident_reaches_only_the_groups_cleared_for_it(
    declare, django_user_model, security_type
):
    for slug in StakeholderGroup.objects.values_list("slug", flat=True):
        add_member(django_user_model, slug, slug)

    incident = declare(incident_type=security_type, title="Credential stuffing on login")

    assert incident.confidential
    assert addresses(incident) == {
        "security-team@example.com",
        "legal-compliance@example.com",
    }


@pytest.mark.django_db
def test_the_status_page_audience_gets_no_direct_messages(declare, django_user_model):
    slugs = list(StakeholderGroup.objects.values_list("slug", flat=True))
    for slug in slugs:
        add_member(django_user_model, slug, slug)

    incident = declare()  # SEV1: every group of the matrix is ticked

    assert "external-customers" in slugs
    assert addresses(incident) == {
        f"{slug}@example.com" for slug in slugs if slug != "external-customers"
    }


@pytest.mark.django_db
def test_disabled_targets_and_inactive_members_get_nothing(declare, django_user_model, receiver):
    add_target(receiver.url + "/on", name="on")
    add_target(receiver.url + "/off", name="off", enabled=False)
    add_member(django_user_model, "oscar", "on-call-engineers")
    gone = add_member(django_user_model, "olga", "on-call-engineers")
    gone.is_active = False
    gone.save()

    incident = declare()

    assert addresses(incident) == {receiver.url + "/on", "oscar@example.com"}


# --- personal messages, updates, muting -----------------------------------------------


@pytest.mark.django_db
def test_a_caller_that_tells_the_new_holder_itself_gets_no_role_message(
    declare, commander, responder
):
    incident = declare()
    assignment = services.role_assign(
        incident=incident,
        role=Role.SCRIBE,
        user=responder,
        actor=commander,
        source=Source.ADMIN,
        tell_holder=False,
    )
    assert assignment.user == responder
    assert not Notification.objects.filter(incident=incident, recipient=responder).exists()


def test_assigning_a_role_emails_the_new_holder(
    declare, commander, responder, django_capture_on_commit_callbacks
):
    incident = declare()

    with django_capture_on_commit_callbacks(execute=True):
        services.role_assign(
            incident=incident,
            role=Role.TECHNICAL_LEAD,
            user=responder,
            actor=commander,
            source=Source.ADMIN,
        )

    notification = Notification.objects.get(incident=incident)
    assert (notification.event, notification.recipient) == (Event.ROLE_ASSIGNED, responder)
    [email] = mail.outbox
    assert email.to == [responder.email]
    assert f"You are now technical lead of {incident.reference}." in email.body


@pytest.mark.django_db
def test_taking_a_role_yourself_sends_nothing(
    declare, commander, django_capture_on_commit_callbacks
):
    incident = declare()

    with django_capture_on_commit_callbacks(execute=True):
        services.role_assign(
            incident=incident,
            role=Role.COMMANDER,
            user=commander,
            actor=commander,
            source=Source.ADMIN,
        )

    assert not Notification.objects.exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_status_update_notifies_the_matrix_with_its_summary(
    declare, django_user_model, commander, receiver, django_capture_on_commit_callbacks
):
    add_member(django_user_model, "oscar", "on-call-engineers")
    add_target(receiver.url)
    incident = declare()
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        services.status_update_post(
            incident=incident,
            audience=Audience.INTERNAL,
            summary="Rolled back release 4.2; error rate is falling.",
            actor=commander,
            source=Source.ADMIN,
        )

    rows = Notification.objects.filter(incident=incident)
    assert {(row.event, row.address) for row in rows} == {
        (Event.STATUS_UPDATE, "oscar@example.com"),
        (Event.STATUS_UPDATE, receiver.url),
    }
    for row in rows:
        assert "Rolled back release 4.2; error rate is falling." in row.body
    [email] = mail.outbox
    assert "Rolled back release 4.2" in email.body
    assert receiver.requests[0].json()["message"] == (
        "Rolled back release 4.2; error rate is falling."
    )


@pytest.mark.django_db
def test_muted_writes_nothing_and_unmutes_afterwards(declare, django_user_model):
    add_member(django_user_model, "oscar", "on-call-engineers")

    with notifications.muted():
        quiet = declare()
    loud = declare()

    assert addresses(quiet) == set()
    assert addresses(loud) == {"oscar@example.com"}


@pytest.mark.django_db
def test_the_same_escalation_step_pages_a_person_once(declare, responder):
    incident = declare()
    step = f"escalation:{incident.pk}:1"

    first = notifications.notify(incident, Event.ESCALATION, users=[responder], dedup_prefix=step)
    again = notifications.notify(incident, Event.ESCALATION, users=[responder], dedup_prefix=step)

    assert len(first) == 1
    assert again == []
    assert Notification.objects.filter(event=Event.ESCALATION).count() == 1


# --- schedules ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sweeper_is_scheduled_every_minute_after_migrate():
    sweeper = Schedule.objects.get(func="incidents.tasks.sweep_notifications")
    assert (sweeper.schedule_type, sweeper.minutes, sweeper.repeats) == (
        Schedule.MINUTES,
        1,
        -1,
    )

    ensure_schedules()  # every migrate runs it again

    assert Schedule.objects.filter(func="incidents.tasks.sweep_notifications").count() == 1


def test_a_claim_is_stale_only_after_the_worker_would_have_stopped_the_delivery(settings):
    # A live worker's send is stopped at DELIVERY_TIMEOUT, so handing the row out again
    # any earlier could send it twice while the first send is still running; and the
    # broker must not hand out a running task again either (retry > timeout).
    assert notifications.STALE_CLAIM.total_seconds() > notifications.DELIVERY_TIMEOUT
    assert notifications.DELIVERY_TIMEOUT > 2 * settings.NOTIFY_HTTP_TIMEOUT
    assert notifications.DELIVERY_TIMEOUT < settings.Q_CLUSTER["retry"]
    # Recovery after a crash: the stale window plus at most one sweeper minute.
    assert notifications.STALE_CLAIM + timedelta(minutes=1) <= timedelta(seconds=120)


@pytest.mark.django_db
def test_deliveries_are_queued_with_their_own_time_limit_through_one_broker_unsaved():
    with mock.patch.object(notifications, "async_task") as queued:
        notifications.queue([7, 8])
    broker = notifications._broker()
    assert queued.call_args_list == [
        mock.call(
            "incidents.tasks.deliver_notification",
            pk,
            timeout=notifications.DELIVERY_TIMEOUT,
            broker=broker,
            save=False,
        )
        for pk in (7, 8)
    ]


def test_a_message_about_no_incident_that_names_none_is_for_its_recipient_alone(
    client, commander, responder, outsider
):
    with transaction.atomic():
        [message] = notifications.notify(
            None, Event.ESCALATION, users=[responder], subject="A note for Bob", message="Hi"
        )
    url = reverse("admin:incidents_notification_change", args=[message.pk])
    for user, status in ((outsider, 302), (commander, 302), (responder, 200)):
        user.groups.add(*commander.groups.all())  # every one may view the outbox
        client.force_login(user)
        assert client.get(url).status_code == status, user
    assert Notification.objects.filter(pk=message.pk).exists()


def test_the_outbox_page_lists_no_incidents_to_pick(client, commander, declare):
    incident = declare(title="Checkout returns 502")
    with transaction.atomic():
        [message] = notifications.notify(
            incident, Event.STATUS_UPDATE, users=[commander], message="x"
        )
    client.force_login(commander)
    body = client.get(
        reverse("admin:incidents_notification_change", args=[message.pk])
    ).content.decode()
    assert 'name="mentions"' not in body
