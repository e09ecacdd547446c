"""Reads shared by admin, API, CLI and pages."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery

from .models import Incident, Notification, Role, RoleAssignment, Status


def user_sees_all_incidents(user) -> bool:
    """Return True for those cleared to see confidential incidents."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name=settings.SECURITY_GROUP).exists()


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
