"""Public pages: the status page, its JSON twin and its Atom feed. No login."""

import gzip
import json
import re

from django.contrib.syndication.views import Feed
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.cache import cache_control

from . import status_page as public
from .models import Audience, Service, StatusUpdate
from .services import UNPRINTABLE

# Browsers ask again on every visit (no-cache): the server's own cache answers in a few
# milliseconds and is dropped the moment a public update is posted, where a browser
# holding a copy for 30 s would hide that update from the person who just posted it.
#
# The page and its JSON are cached gzipped and sent so to every client that takes gzip
# (every browser): at 40 public services the page's 90 daily bars are about 1 MB of
# markup and 50 KB compressed, and sending the megabyte cost more than building the
# response. A client without gzip gets it unpacked.
ACCEPTS_GZIP = re.compile(r"\bgzip\b")  # as Django's GZipMiddleware reads the header


def _compressed(request, name: str, build, content_type: str) -> HttpResponse:
    # ".gz" in the key: a process of an older release, sharing Redis during a deploy,
    # keeps text under the bare name, and neither may read the other's.
    packed = public.cached(f"{name}.gz", lambda: gzip.compress(build().encode(), compresslevel=6))
    if ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", "")):
        response = HttpResponse(packed, content_type=content_type)
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(gzip.decompress(packed), content_type=content_type)
    patch_vary_headers(response, ("Accept-Encoding",))
    return response


@cache_control(public=True, no_cache=True)
def status_page(request):
    # The whole page is cached, so it must hold nothing of the request: no CSP nonce (it
    # runs no script), no CSRF token, no user.
    return _compressed(
        request,
        "page",
        lambda: render_to_string("status/page.html", public.status_overview()),
        "text/html; charset=utf-8",
    )


@cache_control(public=True, no_cache=True)
def status_json(request):
    return _compressed(
        request,
        "json",
        lambda: json.dumps(
            public.overview_as_json(public.status_overview()), cls=DjangoJSONEncoder
        ),
        "application/json",
    )


class StatusFeed(Feed):
    feed_type = Atom1Feed
    title = "Service status"
    subtitle = "Public updates on incidents affecting our services."

    def __call__(self, request, *args, **kwargs):
        # Links in the feed are absolute, built from the request's host: one copy per host.
        def build():
            response = super(StatusFeed, self).__call__(request, *args, **kwargs)
            return response.content, response["Content-Type"], response.get("Last-Modified")

        key = f"feed:{request.scheme}://{request.get_host()}"
        content, content_type, last_modified = public.cached(key, build)
        response = HttpResponse(content, content_type=content_type)
        if last_modified:
            response["Last-Modified"] = last_modified
        return response

    def link(self):
        return reverse("status-page")

    def items(self):
        return (
            StatusUpdate.objects.filter(
                audience=Audience.PUBLIC, incident__in=public.public_incidents().values("pk")
            )
            .select_related("incident")
            .prefetch_related(
                Prefetch(
                    "incident__services",
                    queryset=Service.objects.filter(public=True).order_by("name"),
                    to_attr="public_services",
                )
            )
            # Newest first by id, the order they were posted in (published_at is the time
            # of posting): a backward walk of the primary key that stops at 50.
            .order_by("-pk")[:50]
        )

    # The services keep unprintable characters out; rows written before they did may
    # still hold one, and XML cannot carry it (the whole feed would fail).
    def item_title(self, item):
        name = public.public_name(item.incident.public_title, item.incident.public_services)
        label = public.PHASES[public.phase_of(item.status)][0]
        return UNPRINTABLE.sub("", f"{name} — {label}")

    def item_description(self, item):
        return UNPRINTABLE.sub("", item.summary)

    def item_link(self, item):
        return f"{reverse('status-page')}#{item.incident.reference}"

    def item_guid(self, item):
        return f"{item.incident.reference}-update-{item.number}"

    item_guid_is_permalink = False

    def item_pubdate(self, item):
        return item.published_at
