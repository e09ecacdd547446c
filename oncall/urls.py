"""Pages outside the admin: acknowledge links in pages, contact method verification links,
and the secret calendar feeds. None needs a signed-in user: the link is the key."""

from django.urls import include, path

app_name = "oncall"

urlpatterns = [
    path("", include("oncall.views")),
    path("calendar/", include("oncall.feeds")),
]
