"""Public pages: the status page, its JSON twin and its Atom feed. No login."""

from django.contrib.syndication.views import Feed
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.cache import cache_control

from .models import Audience, StatusUpdate
from .services import UNPRINTABLE
from .status_page import incident_as_json, public_incidents, status_overview


@cache_control(public=True, max_age=30)
def status_page(request):
    return render(request, "status/page.html", status_overview())


@cache_control(public=True, max_age=30)
def status_json(request):
    overview = status_overview()
    return JsonResponse(
        {
            "generated_at": overview["generated_at"],
            "overall": overview["overall"],
            "services": overview["services"],
            "open_incidents": [incident_as_json(i) for i in overview["open_incidents"]],
            "recent_incidents": [incident_as_json(i) for i in overview["recent_incidents"]],
        }
    )


class StatusFeed(Feed):
    feed_type = Atom1Feed
    title = "Service status"
    subtitle = "Public updates on incidents affecting our services."

    def link(self):
        return reverse("status-page")

    def items(self):
        return (
            StatusUpdate.objects.filter(
                audience=Audience.PUBLIC, incident__in=public_incidents().values("pk")
            )
            .select_related("incident")
            .order_by("-published_at")[:50]
        )

    # The services keep unprintable characters out; rows written before they did may
    # still hold one, and XML cannot carry it (the whole feed would fail).
    def item_title(self, item):
        return UNPRINTABLE.sub("", f"{item.incident.title} — {item.get_status_display()}")

    def item_description(self, item):
        return UNPRINTABLE.sub("", item.summary)

    def item_link(self, item):
        return f"{reverse('status-page')}#{item.incident.reference}"

    def item_guid(self, item):
        return f"{item.incident.reference}-update-{item.number}"

    item_guid_is_permalink = False

    def item_pubdate(self, item):
        return item.published_at
