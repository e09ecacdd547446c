"""Reads shared by admin, API, CLI and pages."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OrderBy,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from .business_time import add_business_time
from .models import (
    OPEN_STATUSES,
    BusinessCalendar,
    Incident,
    Notification,
    Role,
    RoleAssignment,
    Severity,
    Status,
)


def user_sees_all_incidents(user) -> bool:
    """Return True for those cleared to see confidential incidents.

    Kept on the user object, as Django's ModelBackend keeps its permission cache: a
    request loads its user once, and a page asks this for every panel and inline."""
    if not user.is_authenticated or not user.is_active:
        return False
    if not hasattr(user, "_sees_all_incidents"):
        user._sees_all_incidents = (
            user.is_superuser or user.groups.filter(name=settings.SECURITY_GROUP).exists()
        )
    return user._sees_all_incidents


def incident_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the incidents `user` may see: confidential ones only for the security
    group and the incident's own participants (declarer or anyone given a role)."""
    queryset = Incident.objects.all() if queryset is None else queryset
    if user_sees_all_incidents(user):
        return queryset
    if not user.is_authenticated:
        return queryset.filter(confidential=False)
    participant = Q(declared_by=user) | Q(
        pk__in=RoleAssignment.objects.filter(user=user).values("incident_id")
    )
    return queryset.filter(Q(confidential=False) | participant)


def user_may_see_incident(user, incident: Incident) -> bool:
    """Return True if `user` may see `incident` (cheap for non-confidential ones)."""
    if not incident.confidential:
        return True
    return incident_list_visible_to(user).filter(pk=incident.pk).exists()


def users_who_may_see(incident: Incident, users) -> set[int]:
    """Return the pks of those among `users` who may see `incident`, in one query."""
    pks = {user.pk for user in users}
    if not incident.confidential:
        return pks
    cleared = Q(is_active=True) & (Q(is_superuser=True) | Q(groups__name=settings.SECURITY_GROUP))
    participant = Q(pk=incident.declared_by_id) | Q(
        pk__in=RoleAssignment.objects.filter(incident=incident).values("user_id")
    )
    may = get_user_model().objects.filter(pk__in=pks).filter(cleared | participant)
    return set(may.values_list("pk", flat=True))


def visible_incidents_prefetch(user, lookup: str) -> Prefetch:
    """Prefetch the incidents behind `lookup` (a many-to-many), keeping only those
    `user` may see: a page may render a row that links an incident it must not name."""
    visible = incident_list_visible_to(user, Incident.objects.order_by("reference"))
    return Prefetch(lookup, queryset=visible)


def active_users() -> QuerySet:
    """People who can be given a role, a review or an item, by username."""
    return get_user_model().objects.filter(is_active=True).order_by("username")


def notification_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the outbox rows `user` may read: those sent to them, and those about
    incidents `user` may see — its incident, and every incident it mentions; a message
    about no incident that names none is for its recipient alone (superusers: all)."""
    queryset = Notification.objects.all() if queryset is None else queryset
    if user.is_superuser:
        return queryset
    visible = incident_list_visible_to(user).values("pk")
    hidden = Incident.objects.exclude(pk__in=visible).values("pk")
    names_some = Notification.mentions.through.objects.values("notification_id")
    about_visible = (Q(incident__in=visible) | Q(incident__isnull=True, pk__in=names_some)) & ~Q(
        mentions__in=hidden
    )
    return queryset.filter(Q(recipient=user) | about_visible)


def false_positive_list(queryset: QuerySet | None = None) -> QuerySet:
    """Return the triage candidates dismissed as false positives: cancelled without ever
    being declared. `declared_at` is stamped once, by declaring or by accepting a
    candidate, and never cleared, and a candidate can only be accepted or cancelled;
    so this is every declined candidate (incident_decline, or a plain cancel from
    triage) and nothing else. The (status, declared_at) index serves it."""
    queryset = Incident.objects.all() if queryset is None else queryset
    return queryset.filter(status=Status.CANCELLED, declared_at__isnull=True)


def false_positive_count(queryset: QuerySet | None = None) -> int:
    """Return how many triage candidates were dismissed as false positives (one query)."""
    return false_positive_list(queryset).count()


def with_commander(queryset: QuerySet) -> QuerySet:
    """Annotate each incident with its current commander's username (one query for a list)."""
    current = RoleAssignment.objects.filter(
        incident=OuterRef("pk"), role=Role.COMMANDER, relieved_at__isnull=True
    ).order_by("-assigned_at")
    return queryset.annotate(commander_username=Subquery(current.values("user__username")[:1]))


def with_listed_services(queryset: QuerySet) -> QuerySet:
    """Prefetch each incident's services as a plain list, `listed_services` (by name)."""
    return queryset.prefetch_related(Prefetch("services", to_attr="listed_services"))


def role_holders_at(incident: Incident, role: str, at: datetime) -> list:
    """Return who held `role` on the incident at the moment `at` ("who was commander at 14:32")."""
    assignments = (
        incident.roles.filter(role=role, assigned_at__lte=at)
        .filter(Q(relieved_at__isnull=True) | Q(relieved_at__gt=at))
        .select_related("user")
    )
    return [assignment.user for assignment in assignments]


def current_role_holders(incident: Incident) -> dict[str, list]:
    """Return {role: [users]} for the roles held right now."""
    holders: dict[str, list] = {}
    for assignment in incident.roles.filter(relieved_at__isnull=True).select_related("user"):
        holders.setdefault(assignment.role, []).append(assignment.user)
    return holders


# --- what needs attention now: the dashboard, and the incident list's filters and order ---

# Severities at or above this rank (SEV1, SEV2) must have a commander while open.
COMMANDER_NEEDED_RANK = 2
# Statuses in which an incident owes stakeholders status updates (watchdogs.WORKING).
UPDATES_OWED = (Status.DECLARED, Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING)


def _business_ack_cutoff(severity, now: datetime, calendar) -> datetime:
    """Return the instant T such that an incident of `severity` declared before T has
    passed its business-hours acknowledgement deadline at `now`, and one declared at or
    after T has not. The deadline only grows with the declaration time, and is never
    earlier than declared + the response time, so a bisection over the declaration time
    finds T exactly (to the microsecond) without reading a row."""
    within = severity.acknowledge_within
    late = now - within  # declared at or after this: the deadline is still ahead
    span = within + timedelta(days=1)
    for _ in range(16):  # a calendar with one working hour a week needs a few doublings
        if add_business_time(now - span, within, calendar) < now:
            break
        span *= 2
    early = now - span  # overdue (or as far back as anyone waits)
    while late - early > timedelta(microseconds=1):
        middle = early + (late - early) / 2
        if add_business_time(middle, within, calendar) < now:
            early = middle
        else:
            late = middle
    return late


def ack_overdue_q(now: datetime, severities=None) -> Q:
    """Return a filter for the incidents past their acknowledgement deadline at `now`.

    The deadline depends on the severity (data) and, for some, on the business calendar,
    which SQL cannot count; so the cut-off declaration time of each severity is worked
    out here (Incident.ack_due_at's rule, exactly) and the database compares declared_at
    with it — the (status, declared_at) index serves every branch."""
    severities = list(Severity.objects.all()) if severities is None else severities
    calendar = None
    if any(severity.response_in_business_hours for severity in severities):
        calendar = BusinessCalendar.current()
    branches = Q(pk__in=[])
    for severity in severities:
        if severity.response_in_business_hours and calendar is not None:
            cutoff = _business_ack_cutoff(severity, now, calendar)
        else:
            cutoff = now - severity.acknowledge_within
        branches |= Q(severity_id=severity.pk, declared_at__lt=cutoff)
    return Q(status=Status.DECLARED, acknowledged_at__isnull=True) & branches


def update_overdue_q(now: datetime, severities=None) -> Q:
    """Return a filter for the incidents whose next status update is overdue at `now`
    (watchdogs.next_update_due's rule); the queryset needs `last_update_due`
    (watchdogs.with_last_update_due)."""
    severities = list(Severity.objects.all()) if severities is None else severities
    by_cadence = Q(pk__in=[])
    for severity in severities:
        by_cadence |= Q(severity_id=severity.pk, declared_at__lt=now - severity.update_every)
    promised = Q(last_update_due__isnull=False, last_update_due__lt=now)
    return Q(status__in=UPDATES_OWED, declared_at__isnull=False) & (
        promised | (Q(last_update_due__isnull=True) & by_cadence)
    )


def without_commander_q() -> Q:
    """Return a filter for the incidents nobody commands now (an indexed NOT EXISTS)."""
    commanded = RoleAssignment.objects.filter(
        incident=OuterRef("pk"), role=Role.COMMANDER, relieved_at__isnull=True
    )
    return ~Exists(commanded)


def attention_q(now: datetime, severities=None) -> Q:
    """Return the filter of "needs attention now": triage candidates waiting, incidents
    not acknowledged (overdue or not yet), status updates overdue, and open SEV1/SEV2
    without a commander. The queryset needs `last_update_due`."""
    severities = list(Severity.objects.all()) if severities is None else severities
    return (
        Q(status=Status.TRIAGE)
        | Q(status=Status.DECLARED, acknowledged_at__isnull=True)
        | update_overdue_q(now, severities)
        | (
            Q(status__in=OPEN_STATUSES, severity__rank__lte=COMMANDER_NEEDED_RANK)
            & without_commander_q()
        )
    )


def overdue_expression(now: datetime, severities=None) -> Case:
    """Return 1 when the acknowledgement or the next update is overdue at `now`, else 0.
    The queryset needs `last_update_due`."""
    severities = list(Severity.objects.all()) if severities is None else severities
    late = ack_overdue_q(now, severities) | update_overdue_q(now, severities)
    # The outer test first: CASE evaluates the inner one (and the latest update's
    # subquery in it) only for incidents still being worked, not for every closed one.
    return Case(
        When(
            Q(status__in=UPDATES_OWED, declared_at__isnull=False),
            then=Case(When(late, then=Value(1)), default=Value(0)),
        ),
        default=Value(0),
        output_field=IntegerField(),
    )


def urgency_ordering(now: datetime, severities=None) -> list:
    """Return the triage order: overdue first, then the most severe, then the oldest
    (declared, or raised for a triage candidate), then by pk. Expressions, not names, so
    the admin can apply it before and after its annotations alike."""
    return [
        OrderBy(overdue_expression(now, severities), descending=True),
        F("severity__rank").asc(),
        OrderBy(Coalesce("declared_at", "created_at")),
        F("pk").asc(),
    ]


def incident_list_held_by(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the incidents in which `user` holds a role now (any role)."""
    queryset = Incident.objects.all() if queryset is None else queryset
    held = RoleAssignment.objects.filter(user=user, relieved_at__isnull=True)
    return queryset.filter(pk__in=held.values("incident_id"))


def open_counts_by_severity(user) -> list[dict]:
    """Return [{"severity": Severity, "count": n}] of the open incidents `user` may
    see, for every severity (zeros included), most severe first: two queries."""
    counts = dict(
        incident_list_visible_to(user, Incident.objects.open())
        .order_by()
        .values_list("severity_id")
        .annotate(count=Count("pk"))
    )
    return [
        {"severity": severity, "count": counts.get(severity.pk, 0)}
        for severity in Severity.objects.order_by("rank")
    ]
