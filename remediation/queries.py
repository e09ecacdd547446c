"""Reads shared by the admin, the API and the report: visibility and the remediation
report, aggregated in the database (a fixed number of queries at any data size)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from incidents.errors import DomainError
from incidents.models import Service, Severity
from incidents.queries import incident_list_visible_to

from .models import UNFINISHED_STATUSES, ActionItem

Status = ActionItem.Status


def action_item_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the items of incidents `user` may see (confidential ones only for the
    security group and the incident's participants)."""
    queryset = ActionItem.objects.all() if queryset is None else queryset
    return queryset.filter(incident__in=incident_list_visible_to(user).values("pk"))


@dataclass
class ReportFilters:
    created_from: date | None = None
    created_to: date | None = None
    service: str | None = None  # slug
    team: str | None = None
    severity: str | None = None  # key

    def apply(self, items: QuerySet) -> QuerySet:
        if self.created_from:
            items = items.filter(created_at__date__gte=self.created_from)
        if self.created_to:
            items = items.filter(created_at__date__lte=self.created_to)
        if self.service:
            items = items.filter(incident__services__slug=self.service)
        if self.team:
            items = items.filter(team=self.team)
        if self.severity:
            items = items.filter(incident__severity__key=self.severity)
        return items


def _filter_date(params: Mapping, name: str) -> date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("Give a date as YYYY-MM-DD.", field=name) from None


def report_filters_from(params: Mapping) -> ReportFilters:
    """Return the report filters a query string names (the admin page's and the API's
    alike); refuse a date that is not YYYY-MM-DD, or a service or severity that does
    not exist, naming the field. A parameter absent or blank does not filter."""
    filters = ReportFilters(
        created_from=_filter_date(params, "created_from"),
        created_to=_filter_date(params, "created_to"),
        **{
            name: (params.get(name) or "").strip() or None
            for name in ("service", "team", "severity")
        },
    )
    for name, model, field in (("service", Service, "slug"), ("severity", Severity, "key")):
        value = getattr(filters, name)
        # A misspelt name would filter everything away: say so rather than report zeros.
        if value and not model.objects.filter(**{field: value}).exists():
            raise DomainError(f"Unknown {name} {value!r}.", field=name)
    return filters


def _counts(today: date) -> dict:
    """The counts every breakdown row carries."""
    unfinished = Q(status__in=UNFINISHED_STATUSES)
    return {
        "total": Count("id", distinct=True),
        "open": Count("id", filter=unfinished, distinct=True),
        "blocked": Count("id", filter=Q(status=Status.BLOCKED), distinct=True),
        "done": Count("id", filter=Q(status=Status.DONE), distinct=True),
        "wont_do": Count("id", filter=Q(status=Status.WONT_DO), distinct=True),
        "overdue": Count("id", filter=unfinished & Q(due_on__lt=today), distinct=True),
    }


def _with_rate(row: dict) -> dict:
    # Won't-do items were decided, not left undone: they leave the denominator.
    decided = row["total"] - row["wont_do"]
    row["completion_rate"] = round(row["done"] / decided, 3) if decided else None
    return row


def _breakdown(items: QuerySet, field: str, today: date, empty: str = "") -> list[dict]:
    # The empty group (no team, no service) last, on SQLite and PostgreSQL alike.
    rows = items.values(field).annotate(**_counts(today)).order_by(F(field).asc(nulls_last=True))
    return [_with_rate({"group": row.pop(field) or empty, **row}) for row in rows]


def _median_days_to_complete(items: QuerySet) -> float | None:
    """The median time from creation to done, in days: the database sorts, we take
    the middle row(s) — two small queries, whatever the number of items."""
    done = (
        items.filter(status=Status.DONE, completed_at__isnull=False)
        .annotate(
            taken=ExpressionWrapper(
                F("completed_at") - F("created_at"), output_field=DurationField()
            )
        )
        .order_by("taken")
    )
    count = done.count()
    if not count:
        return None
    middle = list(done.values_list("taken", flat=True)[(count - 1) // 2 : count // 2 + 1])
    seconds = sum(taken.total_seconds() for taken in middle) / len(middle)
    return round(seconds / 86400, 1)


def remediation_report(
    user, filters: ReportFilters | None = None, today: date | None = None
) -> dict:
    """Return the remediation report over the items `user` may see."""
    today = today or timezone.localdate()
    items = (filters or ReportFilters()).apply(action_item_list_visible_to(user))
    summary = _with_rate(items.aggregate(**_counts(today)))
    blockers = (
        items.filter(status=Status.BLOCKED)
        .select_related("incident", "owner")
        .order_by("blocked_at")[:100]
    )
    now = timezone.now()
    stale_since = now - settings.ACTION_ITEM_BLOCKED_FLAG
    overdue = items.overdue(today).select_related("incident", "owner").order_by("due_on")[:100]
    return {
        "generated_at": timezone.now(),
        "today": today,
        "summary": summary,
        "median_days_to_complete": _median_days_to_complete(items),
        "by_status": [
            {"group": row["status"], "label": Status(row["status"]).label, "total": row["total"]}
            for row in items.values("status")
            .annotate(total=Count("id", distinct=True))
            .order_by("status")
        ],
        "by_priority": _breakdown(items, "priority", today),
        "by_category": _breakdown(items, "category", today),
        "by_team": _breakdown(items, "team", today, empty="(no team)"),
        "by_service": _breakdown(items, "incident__services__name", today, empty="(no service)"),
        "blockers": [
            {
                "item": item,
                "blocked_days": (now - item.blocked_at).days if item.blocked_at else None,
                # Blocked longer than ACTION_ITEM_BLOCKED_FLAG_DAYS: flagged.
                "stale": item.blocked_at is not None and item.blocked_at < stale_since,
            }
            for item in blockers
        ],
        "overdue": [{"item": item, "days_overdue": (today - item.due_on).days} for item in overdue],
    }
