"""The "try a rule" page's judgement: a pasted payload parsed as the intake parses it and
judged by the very functions the intake uses (alerts.rules.Book), with every rule's
reasons. It reads the rules, silences and open groups, and writes nothing."""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from .. import services
from ..models import Alert, AlertSource, DetectionRule
from ..queries import alert_group_list_visible_to, alert_list_visible_to
from ..rules import Book, Subject, Verdict
from ..sources import ParsedAlert, PayloadError, kind_choices

SHOWN_ALERTS = 50


class TryForm(forms.Form):
    kind = forms.ChoiceField(label="Payload format", choices=kind_choices)
    source = forms.ModelChoiceField(
        label="As if sent by",
        queryset=AlertSource.objects.all(),
        required=False,
        empty_label="no particular source",
        help_text="Rules limited to one source match only its alerts; a source also tells "
        "which alerts are already firing (repeats).",
    )
    payload = forms.CharField(
        label="Payload (JSON, as the monitoring system posts it)",
        widget=forms.Textarea(attrs={"rows": 22, "cols": 100, "spellcheck": "false"}),
        max_length=settings.ALERTS_MAX_BODY_BYTES,
        strip=False,
    )

    def clean(self):
        cleaned = super().clean()
        source, kind = cleaned.get("source"), cleaned.get("kind")
        if source is not None and kind and source.kind != kind:
            self.add_error(
                "kind", f"{source} sends {source.get_kind_display()} payloads ({source.kind})."
            )
        return cleaned


@dataclass
class RuleRow:
    verdict: Verdict
    state: str  # "wins", "waits", "holds" (an earlier rule wins), "fails"

    @property
    def rule(self) -> DetectionRule:
        return self.verdict.rule


@dataclass
class AlertTrial:
    parsed: ParsedAlert
    subject: Subject
    rows: list[RuleRow] = field(default_factory=list)
    winner: DetectionRule | None = None
    outcome: str = ""
    title: str = ""
    group_key: str = ""
    severity: object = None
    services: list = field(default_factory=list)
    silence: object = None
    incident: object = None  # the open incident of the key, if the reader may see it
    confidential: bool = False


@dataclass
class Trial:
    error: str = ""
    alerts: list[AlertTrial] = field(default_factory=list)
    total: int = 0
    rules_tried: int = 0
    disabled_rules: int = 0
    now: datetime | None = None


def try_payload(user, *, kind: str, text: str, source: AlertSource | None, now=None) -> Trial:
    """Parse `text` as a `kind` payload and judge each alert as the intake would now."""
    now = now or timezone.now()
    try:
        # The intake's own parsing (JSON, depth, format, how many), on an unsaved source.
        parsed = services.parse_body(AlertSource(kind=kind), text.encode())
    except PayloadError as error:
        return Trial(error=error.message, now=now)
    book = Book.load(now)
    trial = Trial(
        total=len(parsed),
        rules_tried=len(book.rules),
        disabled_rules=DetectionRule.objects.filter(enabled=False).count(),
        now=now,
    )
    shown = parsed[:SHOWN_ALERTS]
    firing_here = set()
    if source is not None:
        firing_here = set(
            alert_list_visible_to(user)
            .filter(
                source=source,
                status=Alert.Status.FIRING,
                fingerprint__in=[alert.fingerprint for alert in shown],
            )
            .values_list("fingerprint", flat=True)
        )
    for alert in shown:
        trial.alerts.append(
            _judge(book, alert, source, now, repeat=alert.fingerprint in firing_here)
        )
    _find_open_incidents(user, trial.alerts)
    return trial


def _judge(book: Book, parsed: ParsedAlert, source, now, *, repeat: bool) -> AlertTrial:
    starts_at = parsed.starts_at if parsed.starts_at and parsed.starts_at <= now else now
    subject = Subject(
        source_id=source.pk if source is not None else None,
        labels=parsed.labels,
        annotations=parsed.annotations,
        metrics=parsed.metrics,
        starts_at=starts_at,
        title=parsed.title,
    )
    trial = AlertTrial(parsed=parsed, subject=subject)
    winning = book.first_holding(subject, now)
    trial.winner = winning.rule if winning else None
    for verdict in book.verdicts(subject, now):
        if trial.winner is not None and verdict.rule.pk == trial.winner.pk:
            state = "waits" if verdict.waiting_until else "wins"
        else:
            state = "holds" if verdict.holds else "fails"
        trial.rows.append(RuleRow(verdict, state))
    if parsed.status == Alert.Status.RESOLVED:
        trial.outcome = (
            "A resolution: it ends the firing alert of this fingerprint; the rules are not asked."
        )
        return trial
    if repeat:
        trial.outcome = (
            "Already firing from this source: a repeat updates that alert; the rules are not "
            "asked again."
        )
        return trial
    if winning is None:
        trial.outcome = "No rule matches: the alert is kept and opens nothing."
        return trial
    rule = winning.rule
    if winning.waiting_until is not None:
        minutes = int(rule.firing_for.total_seconds() // 60)
        trial.outcome = (
            f"Waits: rule “{rule}” matches once the alert has fired for {minutes} min "
            f"({winning.waiting_until:%Y-%m-%d %H:%M} UTC); later rules do not take it meanwhile."
        )
        return trial
    if rule.action == DetectionRule.Action.IGNORE:
        trial.outcome = f"Ignored as noise by rule “{rule}”."
        return trial
    trial.title = book.title_for(rule, subject)
    trial.group_key = book.group_key(rule, subject)
    trial.severity = book.severity_for(rule, subject)
    trial.services = book.services_for(rule, subject)
    trial.confidential = bool(rule.incident_type and rule.incident_type.confidential_by_default)
    trial.silence = book.silence_for(subject, trial.services, now)
    if trial.silence is not None:
        trial.outcome = (
            f"Held back by the silence “{trial.silence.comment}” until "
            f"{trial.silence.ends_at:%Y-%m-%d %H:%M} UTC: kept, opens nothing until then."
        )
        return trial
    kind = "a triage candidate" if rule.open_as == DetectionRule.OpenAs.TRIAGE else "an incident"
    trial.outcome = f"Opens {kind} by rule “{rule}”, or joins the open one holding its key."
    return trial


def _find_open_incidents(user, trials: list[AlertTrial]) -> None:
    """Name the open incident each key would join, among those the reader may see."""
    keys = {trial.group_key for trial in trials if trial.group_key and trial.silence is None}
    if not keys:
        return
    groups = {
        group.key: group
        for group in alert_group_list_visible_to(user)
        .filter(key__in=keys, closed_at__isnull=True, incident__isnull=False)
        .select_related("incident")
    }
    for trial in trials:
        group = groups.get(trial.group_key)
        if group is not None and trial.silence is None:
            trial.incident = group.incident
            trial.outcome = (
                f"Joins {group.incident.reference}, open with this key (rule “{trial.winner}”)."
            )


# --- example payloads (the page's GET) ------------------------------------------------------


def example_payload(kind: str, now: datetime | None = None) -> str:
    """A payload of `kind` that the seeded rules have something to say about."""
    now = now or timezone.now()
    began = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "generic":
        data = [
            {
                "title": "Disk almost full on the API hosts",
                "status": "firing",
                "labels": {"service": "api", "severity": "high", "host": "api-3"},
                "metrics": {"disk_percent": 97.5},
                "starts_at": began,
            },
            {"title": "Nightly report was slow", "labels": {"severity": "low"}},
        ]
    else:
        errors = {"labels": {"alertname": "HighErrorRate", "service": "api", "severity": "high"}}
        watchdog = {"labels": {"alertname": "Watchdog", "severity": "none"}}
        if kind == "grafana":
            errors |= {
                "annotations": {"summary": "5xx above 10 % on the API"},
                "values": {"error_rate": 0.23},
            }
            watchdog |= {"annotations": {}, "values": {}}
        else:
            errors |= {
                "annotations": {"summary": "5xx above 10 % on the API", "error_rate": "0.23"}
            }
            watchdog |= {"annotations": {"summary": "The alerting pipeline works"}}
        alerts = [
            {
                "status": "firing",
                **alert,
                "startsAt": began,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph",
                "fingerprint": fingerprint,
            }
            for alert, fingerprint in ((errors, "a1b2c3d4e5f60718"), (watchdog, "0f1e2d3c4b5a6978"))
        ]
        data = {
            "version": "4",
            "status": "firing",
            "receiver": "sitrep",
            "groupKey": '{}:{alertname="HighErrorRate"}',
            "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example:9093",
            "alerts": alerts,
        }
    return json.dumps(data, indent=2)
