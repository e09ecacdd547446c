"""Judging an alert against the detection rules and the silences: pure functions over
rows loaded once per batch (`Book.load()`), so a payload of many alerts costs the same
few queries as one, and the "try a rule" page shows the very reasons the intake used."""

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Prefetch

from incidents.models import Incident, Service, Severity

from .models import DetectionRule, RuleCondition, Silence, SilenceMatcher

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
TITLE_MAX_LENGTH = Incident._meta.get_field("title").max_length


@dataclass
class Subject:
    """What the rules look at: one alert's labels, values and times."""

    source_id: int
    labels: dict
    annotations: dict
    metrics: dict
    starts_at: datetime
    title: str = ""


@dataclass
class Verdict:
    rule: DetectionRule
    reasons: list[str] = field(default_factory=list)  # why the rule does not match
    waiting_until: datetime | None = None  # conditions hold; "firing for" not yet

    @property
    def matched(self) -> bool:
        return not self.reasons and self.waiting_until is None

    @property
    def holds(self) -> bool:
        """The conditions hold (the rule matches now or will once it has fired long enough)."""
        return not self.reasons


def render(template: str, subject: Subject) -> str:
    """Fill {name} from the labels, then the annotations; unknown names become empty.
    (Not str.format: a template must not reach attributes, `{0.__class__}`.)"""

    def value(match):
        name = match.group(1)
        return subject.labels.get(name, subject.annotations.get(name, ""))

    return " ".join(PLACEHOLDER.sub(value, template).split())


def judge(rule: DetectionRule, subject: Subject, now: datetime) -> Verdict:
    """Say whether `rule` matches the alert, and if not, every reason why not."""
    verdict = Verdict(rule)
    if not rule.enabled:
        verdict.reasons.append("the rule is disabled")
    if rule.source_id is not None and rule.source_id != subject.source_id:
        verdict.reasons.append(f"only for alerts from {rule.source}")
    for condition in rule.conditions.all():
        reason = condition.failure(subject.labels, subject.metrics)
        if reason:
            verdict.reasons.append(reason)
    if not verdict.reasons and rule.firing_for:
        due = subject.starts_at + rule.firing_for
        if due > now:
            verdict.waiting_until = due
    return verdict


class Book:
    """The enabled rules (with their conditions), severities, services and the silences
    active now, read in a few queries and reused for every alert of a batch."""

    def __init__(self, rules, severities, services, silences):
        self.rules = rules
        self.severities = severities
        self.services = services
        self.silences = silences

    @classmethod
    def load(cls, now: datetime, *, rules=None) -> "Book":
        if rules is None:
            rules = DetectionRule.objects.filter(enabled=True)
        rules = list(
            rules.select_related("severity", "incident_type", "source").prefetch_related(
                Prefetch("conditions", queryset=RuleCondition.objects.order_by("pk")),
                "services",
            )
        )
        silences = list(
            Silence.objects.filter(starts_at__lte=now, ends_at__gt=now).prefetch_related(
                Prefetch("matchers", queryset=SilenceMatcher.objects.order_by("pk")), "services"
            )
        )
        services = {}
        for service in Service.objects.all():
            services[service.slug.lower()] = service
            services.setdefault(service.name.lower(), service)
        return cls(rules, Severity.objects.order_by("rank"), services, silences)

    def verdicts(self, subject: Subject, now: datetime) -> list[Verdict]:
        return [judge(rule, subject, now) for rule in self.rules]

    def first_holding(self, subject: Subject, now: datetime) -> Verdict | None:
        """Return the verdict of the first rule whose conditions hold (it may still be
        waiting for its "firing for" time: later rules do not take the alert meanwhile)."""
        for rule in self.rules:
            verdict = judge(rule, subject, now)
            if verdict.holds:
                return verdict
        return None

    def severity_for(self, rule: DetectionRule, subject: Subject) -> Severity:
        if rule.severity is not None:
            return rule.severity
        severity = self.severities.resolve(subject.labels.get("severity", ""))
        return severity or list(self.severities)[-1]

    def services_for(self, rule: DetectionRule, subject: Subject) -> list[Service]:
        chosen = list(rule.services.all())
        if rule.service_label:
            named = subject.labels.get(rule.service_label, "").strip().lower()
            service = self.services.get(named)
            if service is not None and service not in chosen:
                chosen.append(service)
        return chosen

    def silence_for(self, subject: Subject, services: list[Service], now: datetime):
        """Return the active silence that holds this alert back, if any."""
        for silence in self.silences:
            if not silence.is_active(now):
                continue
            wanted = set(silence.services.all())
            if wanted and not wanted.intersection(services):
                continue
            if all(
                matcher.failure(subject.labels, subject.metrics) is None
                for matcher in silence.matchers.all()
            ):
                return silence
        return None

    def title_for(self, rule: DetectionRule, subject: Subject) -> str:
        title = render(rule.title_template, subject) or subject.title
        return title[:TITLE_MAX_LENGTH]

    def group_key(self, rule: DetectionRule, subject: Subject) -> str:
        # Per rule: two rules that render the same text are still two problems.
        return f"rule-{rule.pk}:{render(rule.group_by, subject)}"[:400]
