"""What people configure: sources (and their secrets), detection rules, silences. Each
write validates everything first and saves in one transaction, with history."""

import re
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from incidents.errors import DomainError
from incidents.models import Environment, Service
from incidents.services import acting_user, clean_text, save_as

from .. import secrets
from ..models import (
    LABEL_OPERATORS,
    METRIC_OPERATORS,
    Alert,
    AlertSource,
    Condition,
    DetectionRule,
    Operator,
    RuleCondition,
    Silence,
    SilenceMatcher,
)
from ..rules import PLACEHOLDER
from ..sources import FORMATS

HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
SOURCE_FIELDS = {
    "description",
    "enabled",
    "signature_header",
    "timestamp_header",
    "heartbeat_minutes",
}
RULE_FIELDS = {
    "name",
    "description",
    "priority",
    "enabled",
    "source",
    "firing_for",
    "action",
    "severity",
    "incident_type",
    "service_label",
    "environment",
    "title_template",
    "group_by",
    "open_as",
    "monitor_when_resolved",
}


# --- sources ---------------------------------------------------------------------------


def _check_source(changes: dict) -> dict:
    for name in ("signature_header", "timestamp_header"):
        if name in changes:
            value = (changes[name] or "").strip()
            if value and not HEADER_NAME.match(value):
                raise DomainError("A header name is letters, digits and dashes.", field=name)
            if name == "signature_header" and not value:
                raise DomainError("Name the signature header.", field=name)
            changes[name] = value
    if "description" in changes:
        changes["description"] = clean_text(changes["description"], field="description", limit=2000)
    minutes = changes.get("heartbeat_minutes")
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 10080
    ):
        raise DomainError("Give whole minutes, 1 to 10,080 (a week).", field="heartbeat_minutes")
    return changes


@transaction.atomic
def source_create(*, name: str, kind: str, actor=None, **options) -> tuple[AlertSource, str]:
    """Add an integration; return it and its secret (shown this once, never stored)."""
    unknown = set(options) - SOURCE_FIELDS
    if unknown:
        raise DomainError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    name = clean_text(name, field="name", limit=50, required="Name the source.")
    if slugify(name) != name:
        raise DomainError(
            "A name is lowercase letters, digits and dashes (it is part of URLs).", field="name"
        )
    if kind not in FORMATS:
        raise DomainError(f"Unknown kind {kind!r}; use one of {', '.join(FORMATS)}.", field="kind")
    if AlertSource.objects.filter(name=name).exists():
        raise DomainError(f"A source named {name} exists already.", field="name")
    source = AlertSource(
        name=name, kind=kind, secret_salt=secrets.new_salt(), **_check_source(options)
    )
    save_as(source, actor)
    secret = secrets.secret_of(source)
    source.secret_hint = secrets.hint_of(secret)
    source.save(update_fields=["secret_hint"])
    return source, secret


@transaction.atomic
def source_update(*, source: AlertSource, actor=None, **changes) -> AlertSource:
    unknown = set(changes) - SOURCE_FIELDS
    if unknown:
        raise DomainError(f"Cannot change {', '.join(sorted(unknown))} here.")
    source = AlertSource.objects.select_for_update().get(pk=source.pk)
    for name, value in _check_source(changes).items():
        setattr(source, name, value)
    save_as(source, actor)
    return source


@transaction.atomic
def source_rotate_secret(*, source: AlertSource, actor=None) -> str:
    """Give the source a new secret; the old one stops working at once."""
    source = AlertSource.objects.select_for_update().get(pk=source.pk)
    source.secret_salt = secrets.new_salt()
    secret = secrets.secret_of(source)
    source.secret_hint = secrets.hint_of(secret)
    save_as(source, actor)
    return secret


# --- conditions (of rules and silences) ------------------------------------------------


def check_condition(row: dict, where: str, *, labels_only: bool = False) -> dict:
    """Validate one condition {subject, key, operator, value}; return it cleaned."""
    subject = row.get("subject") or Condition.Subject.LABEL
    if subject not in Condition.Subject.values or (labels_only and subject != "label"):
        allowed = "label" if labels_only else "label or metric"
        raise DomainError(f"{where}: the subject is {allowed}.", field="conditions")
    key = clean_text(
        row.get("key"), field="conditions", limit=100, required=f"{where}: name the {subject}."
    )
    operator = row.get("operator")
    allowed_ops = LABEL_OPERATORS if subject == "label" else METRIC_OPERATORS
    if operator not in allowed_ops:
        names = ", ".join(str(op.value) for op in allowed_ops)
        raise DomainError(
            f"{where}: a {subject} condition uses one of {names}.", field="conditions"
        )
    value = row.get("value", "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = repr(value)
    value = clean_text(value, field="conditions", limit=300)
    if subject == "metric":
        try:
            number = float(value)
        except ValueError:
            raise DomainError(
                f"{where}: the threshold must be a number.", field="conditions"
            ) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise DomainError(f"{where}: the threshold must be finite.", field="conditions")
    elif operator == Operator.MATCHES:
        try:
            re.compile(value)
        except re.error as error:
            raise DomainError(
                f"{where}: not a regular expression ({error}).", field="conditions"
            ) from None
    elif operator != Operator.EXISTS and operator != Operator.NOT_EQUALS and not value:
        raise DomainError(f"{where}: give the value to compare with.", field="conditions")
    return {"subject": subject, "key": key, "operator": operator, "value": value}


def _check_template(value, field: str, required: bool) -> str:
    value = clean_text(
        value, field=field, limit=300, required="Give a template." if required else None
    )
    stray = PLACEHOLDER.sub("", value)
    if "{" in stray or "}" in stray:
        raise DomainError("Use {name} placeholders only (a label or annotation name).", field=field)
    return value


# --- rules -----------------------------------------------------------------------------


def _check_rule(rule: DetectionRule) -> None:
    rule.name = clean_text(rule.name, field="name", limit=100, required="Name the rule.")
    rule.description = clean_text(rule.description, field="description", limit=2000)
    rule.title_template = _check_template(rule.title_template, "title_template", True)
    rule.group_by = _check_template(rule.group_by, "group_by", True)
    rule.service_label = clean_text(rule.service_label, field="service_label", limit=100)
    if rule.action not in DetectionRule.Action.values:
        raise DomainError("The action is open or ignore.", field="action")
    if rule.open_as not in DetectionRule.OpenAs.values:
        raise DomainError("Open as triage or declared.", field="open_as")
    if rule.environment not in Environment.values:
        raise DomainError(f"Use one of {', '.join(Environment.values)}.", field="environment")
    if rule.action == DetectionRule.Action.OPEN and rule.incident_type_id is None:
        raise DomainError("A rule that opens incidents names their type.", field="incident_type")
    if rule.firing_for is not None and not timedelta(0) <= rule.firing_for <= timedelta(days=7):
        raise DomainError("Between 0 and 7 days.", field="firing_for")
    clash = DetectionRule.objects.filter(name=rule.name).exclude(pk=rule.pk)
    if clash.exists():
        raise DomainError(f"A rule named {rule.name} exists already.", field="name")


@transaction.atomic
def rule_save(
    *,
    rule: DetectionRule | None = None,
    actor=None,
    conditions: list[dict] | None = None,
    services: list[Service] | None = None,
    **fields,
) -> DetectionRule:
    """Create or change a rule with its conditions (replaced when given) and services."""
    unknown = set(fields) - RULE_FIELDS
    if unknown:
        raise DomainError(f"Unknown rule fields: {', '.join(sorted(unknown))}.")
    if rule is not None and rule.pk:
        rule = DetectionRule.objects.select_for_update().get(pk=rule.pk)
    else:
        rule = DetectionRule()
    for name, value in fields.items():
        setattr(rule, name, value)
    _check_rule(rule)
    cleaned = None
    if conditions is not None:
        if len(conditions) > 20:
            raise DomainError("At most 20 conditions.", field="conditions")
        cleaned = [
            check_condition(row, f"Condition {index}") for index, row in enumerate(conditions, 1)
        ]
    save_as(rule, actor)
    if cleaned is not None:
        rule.conditions.all().delete()
        for row in cleaned:
            save_as(RuleCondition(rule=rule, **row), actor)
    if services is not None:
        rule.services.set(services)
    return rule


@transaction.atomic
def rule_delete(*, rule: DetectionRule, actor=None) -> None:
    """Remove a rule and its conditions. The alerts it took keep their incidents; those it
    kept waiting are judged again by the next round, against the rules that remain."""
    rule = DetectionRule.objects.select_for_update().get(pk=rule.pk)
    Alert.objects.filter(
        rule=rule, status=Alert.Status.FIRING, incident__isnull=True, evaluate_at__isnull=False
    ).update(evaluate_at=timezone.now())
    _delete_as(rule, actor)


def _delete_as(instance, actor) -> None:
    user = acting_user(actor)
    if user is not None:
        instance._history_user = user
    instance.delete()


# --- silences --------------------------------------------------------------------------


@transaction.atomic
def silence_save(
    *,
    silence: Silence | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime,
    comment: str,
    services: list[Service] = (),
    matchers: list[dict] = (),
    actor=None,
) -> Silence:
    """Create or change a silence: a window, and services and/or label matchers."""
    comment = clean_text(comment, field="comment", limit=300, required="Say why (a maintenance…).")
    now = timezone.now()
    starts_at = starts_at or now
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is None or timezone.is_naive(value):
            raise DomainError("Give a time with its time zone.", field=name)
    if ends_at <= starts_at:
        raise DomainError("The silence must end after it starts.", field="ends_at")
    if ends_at - starts_at > timedelta(days=90):
        raise DomainError(
            "At most 90 days; make a rule that ignores the alert instead.", field="ends_at"
        )
    services, matchers = list(services), list(matchers)
    if len(matchers) > 20:
        raise DomainError("At most 20 matchers.", field="matchers")
    cleaned = [
        check_condition(row, f"Matcher {index}", labels_only=True)
        for index, row in enumerate(matchers, 1)
    ]
    if not services and not cleaned:
        raise DomainError(
            "Name the services or label matchers it silences (not every alert).", field="matchers"
        )
    if silence is not None and silence.pk:
        silence = Silence.objects.select_for_update().get(pk=silence.pk)
    else:
        silence = Silence(created_by=actor if getattr(actor, "is_authenticated", False) else None)
    silence.starts_at, silence.ends_at, silence.comment = starts_at, ends_at, comment
    save_as(silence, actor)
    silence.matchers.all().delete()
    for row in cleaned:
        save_as(SilenceMatcher(silence=silence, **row), actor)
    silence.services.set(services)
    return silence


@transaction.atomic
def silence_expire(*, silence: Silence, actor=None) -> Silence:
    """End a silence now; the alerts it held are judged again by the next round."""
    silence = Silence.objects.select_for_update().get(pk=silence.pk)
    now = timezone.now()
    if silence.ends_at <= now:
        raise DomainError("This silence has ended already.")
    silence.ends_at = max(now, silence.starts_at + timedelta(microseconds=1))
    save_as(silence, actor)
    Alert.objects.filter(silenced_by=silence, status=Alert.Status.FIRING).update(evaluate_at=now)
    return silence


@transaction.atomic
def silence_delete(*, silence: Silence, actor=None) -> None:
    """Remove a silence; the alerts it held are judged again by the next round."""
    silence = Silence.objects.select_for_update().get(pk=silence.pk)
    Alert.objects.filter(silenced_by=silence, status=Alert.Status.FIRING).update(
        evaluate_at=timezone.now()
    )
    _delete_as(silence, actor)
