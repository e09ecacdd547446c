"""The commander's dashboard panel of post-mortems: the reviews I own that are due
soon or overdue, and those waiting for my decision as a reviewer."""

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents.admin.contributions import DashboardPanel

from .models import PostMortem, ReviewDecision
from .queries import postmortem_list_visible_to

PANEL_ROWS = 10
# An owned review shows once it is due within this long (or overdue).
DUE_SOON = timedelta(days=3)


def my_reviews_panel(request) -> str | None:
    """Reviews I own, unpublished and due within DUE_SOON, and reviews in review that
    I review and have not decided this round; one query (the (status, due_at) index)."""
    user = request.user
    if not user.has_perm("postmortems.view_postmortem"):
        return None
    now = timezone.now()
    decided = ReviewDecision.objects.filter(
        postmortem=OuterRef("pk"), round=OuterRef("review_round"), reviewer=user
    )
    owned_due = Q(owner=user, due_at__lt=now + DUE_SOON) & ~Q(status=PostMortem.Status.PUBLISHED)
    to_decide = Q(status=PostMortem.Status.IN_REVIEW, reviewers=user) & ~Exists(decided)
    reviews = list(
        postmortem_list_visible_to(user, PostMortem.objects.filter(owned_due | to_decide))
        .select_related("incident", "owner")
        .distinct()
        .order_by("due_at", "pk")[: PANEL_ROWS + 1]
    )
    if not reviews:
        return None
    rows = [
        {
            "review": review,
            "url": reverse("admin:postmortems_postmortem_change", args=[review.pk]),
            "mine": review.owner_id == user.pk,
            "overdue": review.is_overdue(now),
        }
        for review in reviews[:PANEL_ROWS]
    ]
    return render_to_string(
        "admin/postmortems/dashboard_panel.html",
        {
            "rows": rows,
            "more": len(reviews) > PANEL_ROWS,
            "all_url": reverse("admin:postmortems_postmortem_changelist"),
        },
    )


PANEL = DashboardPanel("Post-mortems due", my_reviews_panel, section="mine", order=30)
