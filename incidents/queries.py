"""Reads shared by admin, API, CLI and pages."""

from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery

from .models import Incident, Notification, Role, RoleAssignment


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


def notification_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the outbox rows `user` may read: those sent to them, and those whose
    incident and every incident they mention `user` may see (superusers: all)."""
    queryset = Notification.objects.all() if queryset is None else queryset
    if user.is_superuser:
        return queryset
    visible = incident_list_visible_to(user).values("pk")
    hidden = Incident.objects.exclude(pk__in=visible).values("pk")
    about_visible = (Q(incident__isnull=True) | Q(incident__in=visible)) & ~Q(mentions__in=hidden)
    return queryset.filter(Q(recipient=user) | about_visible)


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
