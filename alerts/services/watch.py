"""What django-q2 runs every minute: heartbeats (a source gone quiet raises an alert
through the same rules), alerts whose "firing for" time or silence is up, payloads a
failure left unprocessed; and, daily, forgetting old raw payloads."""

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from incidents import extensions
from incidents.models import Source, Status

from ..models import Alert, AlertGroup, AlertPayload, AlertSource
from ..sources import ParsedAlert
from .intake import dispose, ingest, payload_retry

logger = logging.getLogger(__name__)

HEARTBEAT_ALERTNAME = "SitrepHeartbeatMissing"
HEARTBEAT_CONTENT_TYPE = "application/json; sitrep=heartbeat"
SWEEP_AFTER_SECONDS = 30
BATCH = 500


# --- heartbeats ------------------------------------------------------------------------


def _heartbeat_alert(source: AlertSource, status: str, last: datetime | None, now) -> ParsedAlert:
    since = f"since {last:%Y-%m-%d %H:%M} UTC" if last else "ever"
    return ParsedAlert(
        status=status,
        fingerprint=f"heartbeat:{source.name}",
        title=f"{source.get_kind_display()} source {source.name} has gone quiet",
        labels={"alertname": HEARTBEAT_ALERTNAME, "source": source.name, "severity": "medium"},
        annotations={
            "summary": f"{source.name} has gone quiet",
            "description": (
                f"Sitrep has had no payload or heartbeat from {source.name} {since}; it "
                f"expects one at least every {source.heartbeat_minutes} min. Alerts it "
                "raises meanwhile reach nobody."
            ),
        },
        starts_at=now,
        ends_at=None if status == "firing" else now,
    )


def _raise_synthetic(source: AlertSource, alert: ParsedAlert, now) -> None:
    body = json.dumps(
        {
            "status": alert.status,
            "title": alert.title,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "fingerprint": alert.fingerprint,
        }
    )
    payload = AlertPayload.objects.create(
        source=source,
        received_at=now,
        body=body,
        content_type=HEARTBEAT_CONTENT_TYPE,
        alert_count=1,
        status=AlertPayload.Status.PROCESSED,
        attempts=1,
        processed_at=now,
    )
    ingest(source=source, payload=payload, alerts=[alert], now=now, origin=Source.SYSTEM)


def heartbeats_check(now: datetime | None = None) -> int:
    """Raise an alert for each source that has sent nothing for longer than it should;
    return how many went quiet this round."""
    now = now or timezone.now()
    latest_payload = (
        AlertPayload.objects.filter(source=OuterRef("pk"))
        .order_by("-received_at")
        .values("received_at")[:1]
    )
    watched = AlertSource.objects.filter(
        enabled=True, heartbeat_minutes__isnull=False, quiet_since__isnull=True
    ).annotate(last_payload_at=Subquery(latest_payload))
    quiet = 0
    for source in watched:
        heard = [t for t in (source.last_heartbeat_at, source.last_payload_at) if t]
        last = max(heard) if heard else None
        expected_by = (last or source.created_at) + timedelta(minutes=source.heartbeat_minutes)
        if expected_by > now:
            continue
        with transaction.atomic():
            # Compare-and-set: two workers on one round raise the alert once.
            if not AlertSource.objects.filter(pk=source.pk, quiet_since__isnull=True).update(
                quiet_since=now
            ):
                continue
            _raise_synthetic(source, _heartbeat_alert(source, "firing", last, now), now)
        quiet += 1
    return quiet


def heartbeat_heard(source: AlertSource, *, ping: bool, now: datetime | None = None) -> None:
    """Note that the source is alive (a heartbeat, or any payload); if it had gone
    quiet, resolve the alert that said so."""
    now = now or timezone.now()
    if ping:
        AlertSource.objects.filter(pk=source.pk).update(last_heartbeat_at=now)
    if source.quiet_since is None:
        return
    with transaction.atomic():
        if not AlertSource.objects.filter(pk=source.pk, quiet_since__isnull=False).update(
            quiet_since=None
        ):
            return  # another request resolved it first
        _raise_synthetic(source, _heartbeat_alert(source, "resolved", None, now), now)
    source.quiet_since = None


# --- alerts due for another look, payloads left behind ----------------------------------


def alerts_evaluate_due(now: datetime | None = None) -> int:
    """Judge again the firing alerts whose rule's "firing for" time, or whose silence,
    is up; return how many were looked at."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Alert.objects.select_for_update(skip_locked=True)
            .filter(evaluate_at__lte=now, status=Alert.Status.FIRING, incident__isnull=True)
            .order_by("pk")[:BATCH]
        )
        if due:
            dispose(due, [], now=now, origin=Source.SYSTEM)
    return len(due)


def alerts_judge_again(alerts, now: datetime | None = None) -> int:
    """Judge firing alerts without an incident against today's rules (after a rule
    was added or changed); return how many were looked at."""
    now = now or timezone.now()
    with transaction.atomic():
        chosen = list(
            Alert.objects.select_for_update()
            .filter(
                pk__in=[a.pk for a in alerts], status=Alert.Status.FIRING, incident__isnull=True
            )
            .order_by("pk")
        )
        if chosen:
            dispose(chosen, [], now=now, origin=Source.ADMIN)
    return len(chosen)


def payloads_sweep(now: datetime | None = None) -> int:
    """Process again the payloads stored but not processed (a failure rolled their
    alerts back); return how many are processed now."""
    now = now or timezone.now()
    waiting = AlertPayload.objects.filter(
        status=AlertPayload.Status.RECEIVED,
        received_at__lt=now - timedelta(seconds=SWEEP_AFTER_SECONDS),
    ).order_by("received_at")[:100]
    return sum(payload_retry(payload, now) for payload in waiting)


def payloads_prune(now: datetime | None = None) -> int:
    """Forget raw payloads older than ALERTS_PAYLOAD_RETENTION; return how many."""
    cutoff = (now or timezone.now()) - settings.ALERTS_PAYLOAD_RETENTION
    pruned = 0
    while True:
        ids = list(
            AlertPayload.objects.filter(received_at__lt=cutoff)
            .exclude(status=AlertPayload.Status.RECEIVED)
            .values_list("pk", flat=True)[:1000]
        )
        if not ids:
            return pruned
        pruned += AlertPayload.objects.filter(pk__in=ids).delete()[0]


# --- the incident's side ----------------------------------------------------------------

ENDS_GROUP = {Status.RESOLVED, Status.CLOSED, Status.CANCELLED}


def follow_incident(event: extensions.Transitioned) -> None:
    """An incident resolved, closed or cancelled ends its group: an alert firing after
    that opens a new incident. Reopened, it takes its group back unless a new incident
    holds the key by then."""
    incident, now = event.incident, timezone.now()
    if event.to_status in ENDS_GROUP:
        for group in AlertGroup.objects.filter(incident=incident, closed_at__isnull=True):
            group.closed_at = now
            group.save(update_fields=["closed_at"])
    elif event.from_status == Status.RESOLVED:
        for group in AlertGroup.objects.filter(incident=incident, closed_at__isnull=False):
            group.closed_at = None
            try:
                with transaction.atomic():
                    group.save(update_fields=["closed_at"])
            except IntegrityError:
                logger.info("Group %s stays closed: a newer incident holds its key", group.key)
