"""Reads shared by the admin, the API and the stakeholder pages."""

from django.db.models import QuerySet

from incidents.queries import incident_list_visible_to, visible_incidents_prefetch

from .models import PostMortem


def postmortem_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the reviews `user` may read: of incidents they may see (confidential ones
    only for the security group and participants), and drafts only for writers."""
    queryset = PostMortem.objects.all() if queryset is None else queryset
    queryset = queryset.filter(incident__in=incident_list_visible_to(user).values("pk"))
    if not user.has_perm("postmortems.change_postmortem"):
        queryset = queryset.filter(status=PostMortem.Status.PUBLISHED)
    return queryset


def with_visible_related(user, queryset: QuerySet) -> QuerySet:
    """Prefetch each review's related incidents, keeping only those `user` may see
    (a public review may point at a confidential incident)."""
    return queryset.prefetch_related(visible_incidents_prefetch(user, "related_incidents"))
