"""Who may see which alerts: one helper for the admin, the API and the pages.

An alert of a confidential incident is as confidential as the incident; one that has
no incident yet (waiting, silenced) but whose rule opens confidential incidents (a
security rule) is hidden the same way. Raw payloads may hold any alert of any incident,
so only those who see every incident read them."""

from django.db.models import Q, QuerySet

from incidents.queries import incident_list_visible_to, user_sees_all_incidents

from .models import Alert, AlertGroup, AlertPayload

NOT_CONFIDENTIAL_RULE = (
    Q(rule__isnull=True)
    | Q(rule__incident_type__isnull=True)
    | Q(rule__incident_type__confidential_by_default=False)
)


def alert_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    queryset = Alert.objects.all() if queryset is None else queryset
    if user_sees_all_incidents(user):
        return queryset
    without_incident = Q(incident__isnull=True) & NOT_CONFIDENTIAL_RULE
    return queryset.filter(
        without_incident | Q(incident__in=incident_list_visible_to(user).values("pk"))
    )


def alert_group_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    queryset = AlertGroup.objects.all() if queryset is None else queryset
    if user_sees_all_incidents(user):
        return queryset
    return queryset.filter(incident__in=incident_list_visible_to(user).values("pk"))


def payload_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    queryset = AlertPayload.objects.all() if queryset is None else queryset
    return queryset if user_sees_all_incidents(user) else queryset.none()
