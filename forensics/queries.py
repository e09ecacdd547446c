"""Reads shared by the admin, the API and the download: what a user may see. Evidence,
its custody log and the breach assessment of a confidential incident are for its
participants and the security group alone, as the incident is (incidents.queries)."""

from django.db.models import QuerySet

from incidents.queries import incident_list_visible_to

from .models import BreachAssessment, CustodyRecord, EvidenceItem


def evidence_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the evidence items of incidents `user` may see."""
    queryset = EvidenceItem.objects.all() if queryset is None else queryset
    return queryset.filter(incident__in=incident_list_visible_to(user).values("pk"))


def custody_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the custody records of evidence `user` may see."""
    queryset = CustodyRecord.objects.all() if queryset is None else queryset
    return queryset.filter(evidence__incident__in=incident_list_visible_to(user).values("pk"))


def breach_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the breach assessments of incidents `user` may see."""
    queryset = BreachAssessment.objects.all() if queryset is None else queryset
    return queryset.filter(incident__in=incident_list_visible_to(user).values("pk"))
