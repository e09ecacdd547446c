"""Taking alerts in: store the payload, update or insert each alert by fingerprint, judge
the new ones against the rules and the silences, and open or join the incident of their
group — in the request's one transaction.

Order of locks, the same in every transaction so two never wait on each other: the
alerts (existing ones in id order, new ones by fingerprint), then the groups (existing
ones in id order, new keys sorted), then the incidents the services lock."""

import json
import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from incidents.api.parsers import MAX_DEPTH, nests_deeper_than
from incidents.models import DetectionSource, Incident, Source, Status
from incidents.services import (
    MAX_BACKDATE,
    incident_declare,
    incident_transition,
    timeline_record_many,
)
from incidents.services.common import UNPRINTABLE
from incidents.services.lifecycle import TRANSITIONS

from ..models import Alert, AlertGroup, AlertPayload, AlertSource, DetectionRule
from ..rules import Book, Subject, Verdict
from ..sources import ParsedAlert, PayloadError, get_format
from ..vocabulary import Kind

logger = logging.getLogger(__name__)

# Fields a repeat may change: one UPDATE for all the repeats of a payload.
REPEAT_FIELDS = ["last_seen_at", "times_received", "annotations", "metrics", "last_payload"]
RESOLVE_FIELDS = REPEAT_FIELDS + ["status", "ends_at", "resolved_at", "evaluate_at"]
DISPOSE_FIELDS = ["rule", "group", "incident", "silenced_by", "disposition", "evaluate_at"]


class TooManyAlerts(PayloadError):
    """The payload holds more alerts than one request may (refused whole: 413)."""


@dataclass
class Outcome:
    """What one payload did, for the response and the payload row."""

    new: int = 0
    repeated: int = 0
    resolved: int = 0
    unknown_resolved: int = 0  # a resolution for an alert not firing here: nothing to do
    opened: list[str] = field(default_factory=list)  # references of incidents opened
    joined: set[str] = field(default_factory=set)  # references of incidents alerts joined

    def as_dict(self) -> dict:
        return {
            "new": self.new,
            "repeated": self.repeated,
            "resolved": self.resolved,
            "resolved_unknown": self.unknown_resolved,
            "incidents_opened": self.opened,
            "incidents_joined": sorted(self.joined - set(self.opened)),
        }


# --- the payload -----------------------------------------------------------------------


def parse_body(source: AlertSource, body: bytes) -> list[ParsedAlert]:
    """Decode and parse a body in the source's format, or raise PayloadError naming why."""
    try:
        # UTF-8 only, as the body is kept (json.loads would also take UTF-16 and UTF-32,
        # kept garbled, and encoded surrogates): what is taken must be what is kept.
        data = json.loads(body.decode("utf-8-sig"))
        if nests_deeper_than(data, MAX_DEPTH):
            raise PayloadError(f"The JSON nests deeper than {MAX_DEPTH} levels.")
    except RecursionError:
        raise PayloadError(f"The JSON nests deeper than {MAX_DEPTH} levels.") from None
    except UnicodeDecodeError:
        raise PayloadError("The body is not UTF-8 text.") from None
    except json.JSONDecodeError as error:
        raise PayloadError(f"The body is not JSON: {error.msg} at line {error.lineno}.") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise PayloadError("The body holds a number too long to read.") from None
    alerts = get_format(source.kind).parse(data)
    if len(alerts) > settings.ALERTS_MAX_PER_PAYLOAD:
        raise TooManyAlerts(
            f"The payload holds {len(alerts):,} alerts; at most "
            f"{settings.ALERTS_MAX_PER_PAYLOAD:,} are taken in one request: send them in parts."
        )
    return alerts


def _as_text(body: bytes) -> str:
    # Kept as text (a TextField); what is not UTF-8 is kept with replacement characters.
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def payload_reject(
    *, source: AlertSource, body: bytes, content_type: str, error: str
) -> AlertPayload:
    """Keep a refused body with the reason it was refused."""
    return AlertPayload.objects.create(
        source=source,
        body=_as_text(body),
        content_type=UNPRINTABLE.sub("", content_type)[:100],
        status=AlertPayload.Status.REJECTED,
        error=error,
    )


def payload_receive(
    *, source: AlertSource, body: bytes, content_type: str
) -> tuple[AlertPayload, Outcome | None]:
    """Store the body and take its alerts in, or keep it refused; return the payload
    and, if it was processed, what it did. Raises PayloadError for a body refused.

    The payload row and the alerts commit together. If taking the alerts in fails
    unexpectedly, their part is rolled back and the payload stays `received` (with the
    error) for the sweeper: the sender's 2xx still means the payload is stored."""
    try:
        alerts = parse_body(source, body)
    except PayloadError as error:
        payload_reject(source=source, body=body, content_type=content_type, error=error.message)
        raise
    with transaction.atomic():
        now = timezone.now()
        payload = AlertPayload.objects.create(
            source=source,
            received_at=now,
            body=_as_text(body),
            content_type=UNPRINTABLE.sub("", content_type)[:100],
            alert_count=len(alerts),
            status=AlertPayload.Status.PROCESSED,
            attempts=1,
            processed_at=now,
        )
        outcome = _process(payload, alerts, now)
    return payload, outcome


def _process(payload: AlertPayload, alerts: list[ParsedAlert], now, origin=Source.API):
    """Take the alerts in inside a savepoint; on failure mark the payload for a retry."""
    try:
        with transaction.atomic():
            return ingest(
                source=payload.source, payload=payload, alerts=alerts, now=now, origin=origin
            )
    except Exception:
        logger.exception("Alert payload %s failed; the sweeper will retry it", payload.pk)
        payload.status = AlertPayload.Status.RECEIVED
        payload.processed_at = None
        payload.error = traceback.format_exc(limit=3)[-2000:]
        payload.save(update_fields=["status", "processed_at", "error"])
        return None


def payload_retry(payload: AlertPayload, now: datetime | None = None) -> bool:
    """Process a stored payload again (the sweeper, or "retry" in the admin); return
    whether it is processed now. After too many failures it is marked failed, kept."""
    now = now or timezone.now()
    with transaction.atomic():
        payload = (
            # of=("self",): lock the payload, not its source (heartbeats update that row).
            AlertPayload.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("source")
            .filter(
                pk=payload.pk, status__in=[AlertPayload.Status.RECEIVED, AlertPayload.Status.FAILED]
            )
            .first()
        )
        if payload is None:  # processed meanwhile, or another worker has it
            return False
        payload.attempts += 1
        try:
            alerts = parse_body(payload.source, payload.body.encode())
        except PayloadError as error:
            payload.status, payload.error = AlertPayload.Status.REJECTED, error.message
            payload.save(update_fields=["status", "error", "attempts"])
            return False
        payload.status, payload.processed_at, payload.error = (
            AlertPayload.Status.PROCESSED,
            now,
            "",
        )
        payload.save(update_fields=["status", "processed_at", "error", "attempts"])
        if _process(payload, alerts, now, origin=Source.SYSTEM) is None:
            if payload.attempts >= MAX_ATTEMPTS:
                payload.status = AlertPayload.Status.FAILED
                payload.save(update_fields=["status"])
            return False
        return True


MAX_ATTEMPTS = 5


# --- alerts ----------------------------------------------------------------------------


def _subject(alert: Alert) -> Subject:
    return Subject(
        source_id=alert.source_id,
        labels=alert.labels,
        annotations=alert.annotations,
        metrics=alert.metrics,
        starts_at=alert.starts_at,
        title=alert.title,
    )


def ingest(
    *,
    source: AlertSource,
    payload: AlertPayload,
    alerts: list[ParsedAlert],
    now: datetime,
    origin: str = Source.API,
) -> Outcome:
    """Update, insert or resolve each alert by fingerprint and dispose of the new ones."""
    outcome = Outcome()
    latest: dict[str, ParsedAlert] = {}
    for parsed in alerts:  # the same alert twice in one payload: the last says
        latest[parsed.fingerprint] = parsed
    # Lock the firing alerts this payload names, in id order (one statement).
    firing = {
        alert.fingerprint: alert
        for alert in Alert.objects.select_for_update()
        .filter(source=source, status=Alert.Status.FIRING, fingerprint__in=list(latest))
        .order_by("pk")
    }
    new_rows = [
        _new_alert(source, payload, parsed, now)
        for fingerprint, parsed in sorted(latest.items())
        if fingerprint not in firing and parsed.status == Alert.Status.FIRING
    ]
    fresh: list[Alert] = []
    if new_rows:
        # Two requests carrying the same new alert: the partial unique index lets one
        # insert win; the other's insert waits for it, then does nothing, and the alert
        # is a repeat to it (read back below, by whose payload inserted it).
        Alert.objects.bulk_create(new_rows, ignore_conflicts=True)
        for alert in (
            Alert.objects.select_for_update()
            .filter(
                source=source,
                status=Alert.Status.FIRING,
                fingerprint__in=[row.fingerprint for row in new_rows],
            )
            .order_by("pk")
        ):
            if alert.last_payload_id == payload.pk:
                fresh.append(alert)
            else:
                firing[alert.fingerprint] = alert
    repeats, resolutions, retold = [], [], set()
    for fingerprint, parsed in latest.items():
        alert = firing.get(fingerprint)
        if alert is None:
            if parsed.status == Alert.Status.RESOLVED:
                outcome.unknown_resolved += 1
            continue
        if alert.annotations != parsed.annotations or alert.metrics != parsed.metrics:
            retold.add(alert.pk)
        alert.last_seen_at = now
        alert.times_received += 1
        alert.annotations, alert.metrics = parsed.annotations, parsed.metrics
        alert.last_payload = payload
        if parsed.status == Alert.Status.RESOLVED:
            alert.status = Alert.Status.RESOLVED
            alert.resolved_at = now
            alert.ends_at = parsed.ends_at or now
            alert.evaluate_at = None
            resolutions.append(alert)
        else:
            repeats.append(alert)
    if repeats:
        _save_repeats(repeats, retold, payload, now)
        outcome.repeated = len(repeats)
    if resolutions:
        Alert.objects.bulk_update(resolutions, RESOLVE_FIELDS)
        outcome.resolved = len(resolutions)
    outcome.new = len(fresh)
    if fresh or resolutions:
        dispose(fresh, resolutions, now=now, origin=origin, outcome=outcome)
    return outcome


def _save_repeats(repeats: list[Alert], retold: set[int], payload, now) -> None:
    """Write the repeats: one plain UPDATE for those that say what is stored already
    (the usual resend), bulk_update for those whose annotations or values changed."""
    same = [alert.pk for alert in repeats if alert.pk not in retold]
    if same:
        # Not bulk_update: its CASE per row and field costs ~1 ms of Python an alert
        # (20 repeats: ~20 ms a request). The rows are locked above, so the database's
        # times_received + 1 is the count set on the objects.
        Alert.objects.filter(pk__in=same).update(
            last_seen_at=now, last_payload=payload, times_received=F("times_received") + 1
        )
    changed = [alert for alert in repeats if alert.pk in retold]
    if changed:
        Alert.objects.bulk_update(changed, REPEAT_FIELDS)


def _new_alert(source, payload, parsed: ParsedAlert, now) -> Alert:
    starts_at = parsed.starts_at if parsed.starts_at and parsed.starts_at <= now else now
    return Alert(
        source=source,
        fingerprint=parsed.fingerprint,
        status=Alert.Status.FIRING,
        title=parsed.title,
        labels=parsed.labels,
        annotations=parsed.annotations,
        metrics=parsed.metrics,
        generator_url=parsed.generator_url,
        starts_at=starts_at,
        ends_at=None,
        first_seen_at=now,
        last_seen_at=now,
        last_payload=payload,
    )


# --- judging and grouping ----------------------------------------------------------------


@dataclass
class _Plan:
    alert: Alert
    verdict: Verdict
    key: str


def dispose(
    fresh: list[Alert],
    resolutions: list[Alert],
    *,
    now: datetime,
    origin: str,
    outcome: Outcome | None = None,
    book: Book | None = None,
) -> Outcome:
    """Judge firing alerts that have no incident yet and put each where its rule says;
    record the resolutions on their incidents. Alerts are locked by the caller."""
    outcome = outcome or Outcome()
    plans: list[_Plan] = []
    if fresh:
        book = book or Book.load(now)
        for alert in fresh:
            plan = _judge(book, alert, now)
            if plan is not None:
                plans.append(plan)
    keys = sorted({plan.key for plan in plans})
    groups = _lock_groups(keys, {alert.group_id for alert in resolutions if alert.group_id})
    for key in keys:
        if key not in groups:
            groups[key], opened = _claim(
                key, next(p for p in plans if p.key == key), book, now, origin
            )
            if opened:
                outcome.opened.append(groups[key].incident.reference)
    refired = _refired(plans, groups)
    entries: list[dict] = []
    announced = set()
    for plan in plans:
        group, alert = groups[plan.key], plan.alert
        alert.group, alert.incident = group, group.incident
        reference = group.incident.reference
        verb = "Opened" if reference in outcome.opened and reference not in announced else "Joined"
        announced.add(reference)
        alert.disposition = f"{verb} {reference} (rule “{plan.verdict.rule}”)."
        outcome.joined.add(reference)
        again = (group.pk, alert.fingerprint) in refired
        entries.append(
            _entry(
                group.incident,
                f"Alert {'fired again' if again else 'fired'}: {alert.title}",
                now,
                alert,
                "refired" if again else "fired",
            )
        )
    if fresh:
        _save_dispositions(fresh)
    for group in {groups[plan.key] for plan in plans}:
        if group.all_resolved_at is not None:  # firing again after all had resolved
            group.all_resolved_at = None
            group.save(update_fields=["all_resolved_at"])
    incidents = Incident.objects.in_bulk({a.incident_id for a in resolutions if a.incident_id})
    for alert in resolutions:
        if alert.incident_id:
            entries.append(
                _entry(
                    incidents[alert.incident_id],
                    f"Alert resolved: {alert.title}",
                    now,
                    alert,
                    "resolved",
                )
            )
    monitor = _all_resolved(resolutions, now, entries)
    if entries:
        timeline_record_many(entries, actor=None, source=origin)
    for group in monitor:
        incident_transition(
            incident=group.incident,
            to_status=Status.MONITORING,
            note="every alert has resolved",
            source=origin,
        )
    return outcome


def _save_dispositions(alerts: list[Alert]) -> None:
    """Write what the rules made of the alerts: one plain UPDATE when they all came to the
    same (the new alerts of a payload mostly join one incident), else bulk_update."""
    outcomes = {
        tuple(getattr(alert, Alert._meta.get_field(name).attname) for name in DISPOSE_FIELDS)
        for alert in alerts
    }
    if len(outcomes) > 1:
        Alert.objects.bulk_update(alerts, DISPOSE_FIELDS)
        return
    # bulk_update's CASE per row and field costs more Python than the statement saves.
    Alert.objects.filter(pk__in=[alert.pk for alert in alerts]).update(
        **{name: getattr(alerts[0], name) for name in DISPOSE_FIELDS}
    )


def _judge(book: Book, alert: Alert, now: datetime) -> _Plan | None:
    """Set the alert's rule and disposition; return its grouping plan if it opens or
    joins an incident."""
    subject = _subject(alert)
    verdict = book.first_holding(subject, now)
    alert.evaluate_at = None
    alert.silenced_by = None
    if verdict is None:
        alert.rule, alert.disposition = None, "No rule matched."
        return None
    rule = alert.rule = verdict.rule
    if verdict.waiting_until is not None:
        alert.evaluate_at = verdict.waiting_until
        minutes = int(rule.firing_for.total_seconds() // 60)
        alert.disposition = (
            f"Waiting: rule “{rule}” matches once it has fired for {minutes} min "
            f"({verdict.waiting_until:%Y-%m-%d %H:%M} UTC)."
        )
        return None
    if rule.action == DetectionRule.Action.IGNORE:
        alert.disposition = f"Ignored as noise by rule “{rule}”."
        return None
    silence = book.silence_for(subject, book.services_for(rule, subject), now)
    if silence is not None:
        alert.silenced_by = silence
        alert.evaluate_at = silence.ends_at  # judged again when the silence ends
        alert.disposition = (
            f"Silenced by “{silence.comment}” until {silence.ends_at:%Y-%m-%d %H:%M} UTC."
        )
        return None
    return _Plan(alert, verdict, book.group_key(rule, subject))


def _lock_groups(keys: list[str], group_ids: set[int]) -> dict:
    """Lock the open groups of these keys and the groups named, in id order; return the
    open ones by key (the others are read through their alerts)."""
    if not keys and not group_ids:
        return {}
    locked = (
        AlertGroup.objects.select_for_update(of=("self",))
        .select_related("incident", "rule")
        .filter(Q(key__in=keys, closed_at__isnull=True) | Q(pk__in=group_ids))
        .order_by("pk")
    )
    return {group.key: group for group in locked if group.closed_at is None}


def _claim(key: str, plan: _Plan, book: Book, now: datetime, origin: str) -> tuple:
    """Open the group of `key` and its incident, or join the group another transaction
    opened meanwhile (its insert wins; ours waits for it, finds the row and joins)."""
    AlertGroup.objects.bulk_create(
        [AlertGroup(key=key, rule=plan.verdict.rule, opened_at=now)], ignore_conflicts=True
    )
    group = (
        AlertGroup.objects.select_for_update(of=("self",))
        .select_related("incident")
        .get(key=key, closed_at__isnull=True)
    )
    if group.incident_id is not None:  # another transaction's, committed meanwhile
        return group, False
    group.incident = _open_incident(plan, book, now, origin)
    group.save(update_fields=["incident"])
    return group, True


def _open_incident(plan: _Plan, book: Book, now: datetime, origin: str):
    rule, alert = plan.verdict.rule, plan.alert
    subject = _subject(alert)
    # An alert that began longer ago than an incident may be back-dated starts then.
    started_at = max(alert.starts_at, now - MAX_BACKDATE + timedelta(minutes=1))
    summary = alert.annotations.get("description") or alert.annotations.get("summary") or ""
    return incident_declare(
        title=book.title_for(rule, subject),
        severity=book.severity_for(rule, subject),
        incident_type=rule.incident_type,
        environment=rule.environment,
        summary=summary[:5000],
        services=book.services_for(rule, subject),
        detection_source=DetectionSource.MONITORING_ALERT,
        started_at=started_at,
        detected_at=started_at,
        declared_at=now,
        triage=rule.open_as == DetectionRule.OpenAs.TRIAGE,
        source=origin,
    )


def _refired(plans: list[_Plan], groups: dict) -> set[tuple[int, str]]:
    """Return (group, fingerprint) of the new alerts that fired before in their group."""
    if not plans:
        return set()
    earlier = Alert.objects.filter(
        group__in=[groups[plan.key].pk for plan in plans],
        fingerprint__in=[plan.alert.fingerprint for plan in plans],
        status=Alert.Status.RESOLVED,
    ).values_list("group_id", "fingerprint")
    return set(earlier)


def _entry(incident, summary: str, now: datetime, alert: Alert, event: str) -> dict:
    return {
        "incident": incident,
        "kind": Kind.ALERT,
        "summary": summary[:500],
        "occurred_at": now,
        "details": {
            "event": event,
            "alert": alert.pk,
            "fingerprint": alert.fingerprint,
            "labels": alert.labels,
        },
    }


def _all_resolved(resolutions: list[Alert], now, entries: list) -> list:
    """Mark the groups whose last firing alert just resolved; return those whose rule
    moves the incident to Monitoring then (and whose status allows it)."""
    ids = {alert.group_id for alert in resolutions if alert.group_id}
    if not ids:
        return []
    still_firing = dict(
        Alert.objects.filter(group__in=ids, status=Alert.Status.FIRING)
        .values("group")
        .annotate(n=Count("pk"))
        .values_list("group", "n")
    )
    done = (
        AlertGroup.objects.filter(pk__in=ids - set(still_firing), all_resolved_at__isnull=True)
        .select_related("incident", "rule")
        .annotate(alert_count=Count("alerts"))
    )
    monitor = []
    for group in done:
        group.all_resolved_at = now
        group.save(update_fields=["all_resolved_at"])
        if group.incident is None:
            continue
        entries.append(
            {
                "incident": group.incident,
                "kind": Kind.ALERT,
                "summary": f"All {group.alert_count} alerts resolved"
                if group.alert_count != 1
                else "The alert resolved",
                "occurred_at": now,
                "details": {"event": "all_resolved", "group": group.key},
            }
        )
        if (
            group.rule is not None
            and group.rule.monitor_when_resolved
            and Status.MONITORING in TRANSITIONS.get(group.incident.status, ())
        ):
            monitor.append(group)
    return monitor
