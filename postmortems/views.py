"""Stakeholder pages: published reviews to read, print and download. Login required;
what a reader may see comes from queries.postmortem_list_visible_to, as in admin and API."""

from functools import reduce
from operator import or_

import django_filters
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string

from incidents.models import Service, Severity

from .models import BLAMELESS_NOTE, PostMortem, ReviewDecision
from .queries import postmortem_list_visible_to, with_visible_related

SEARCHED_FIELDS = (
    "incident__reference",
    "incident__title",
    "executive_summary",
    "root_cause",
    "lessons_learned",
)
READ = permission_required("postmortems.view_postmortem", raise_exception=True)


class PublishedFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    service = django_filters.ModelChoiceFilter(
        field_name="incident__services",
        to_field_name="slug",
        queryset=Service.objects.all(),
        empty_label="Any service",
    )
    severity = django_filters.ModelChoiceFilter(
        field_name="incident__severity",
        to_field_name="key",
        queryset=Severity.objects.all(),
        empty_label="Any severity",
    )
    after = django_filters.DateFilter(
        field_name="incident__started_at", lookup_expr="date__gte", label="From"
    )
    before = django_filters.DateFilter(
        field_name="incident__started_at", lookup_expr="date__lte", label="To"
    )

    class Meta:
        model = PostMortem
        fields = []

    def search(self, queryset, name, value):
        matches = [Q(**{f"{field}__icontains": value}) for field in SEARCHED_FIELDS]
        return queryset.filter(reduce(or_, matches))


def _readable(request):
    return postmortem_list_visible_to(request.user).select_related(
        "incident__severity", "incident__incident_type", "owner", "published_by"
    )


@login_required
@READ
def postmortem_list(request):
    published = _readable(request).filter(status=PostMortem.Status.PUBLISHED)
    filters = PublishedFilter(request.GET, queryset=published)
    ordered = filters.qs.distinct().order_by("-published_at")
    page = Paginator(ordered.prefetch_related("incident__services"), 25).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "postmortems/list.html",
        {"filters": filters, "page": page, "query": query.urlencode()},
    )


def _review(request, reference) -> PostMortem:
    return get_object_or_404(
        with_visible_related(request.user, _readable(request)), incident__reference=reference
    )


def _context(postmortem: PostMortem) -> dict:
    return {
        "postmortem": postmortem,
        "incident": postmortem.incident,
        "blameless_note": BLAMELESS_NOTE,
        "facts": postmortem.facts,
        "factors": postmortem.contributing_factors.all(),
        "key_events": postmortem.timeline.filter(is_key=True),
        "events": postmortem.timeline.all(),
        "approvals": postmortem.decisions.filter(
            round=postmortem.review_round, decision=ReviewDecision.Decision.APPROVED
        ).select_related("reviewer"),
    }


@login_required
@READ
def postmortem_detail(request, reference):
    return render(request, "postmortems/detail.html", _context(_review(request, reference)))


@login_required
@READ
def postmortem_markdown(request, reference):
    postmortem = _review(request, reference)
    text = render_to_string("postmortems/export.md", _context(postmortem))
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{reference}-postmortem.md"'
    return response
