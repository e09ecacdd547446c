from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from incidents.api.docs import CachedSchemaView
from incidents.views import StatusFeed, status_json, status_page

admin.site.site_header = "Sitrep"
admin.site.site_title = "Sitrep"
admin.site.index_title = "Incident response"


class FaviconView(RedirectView):
    """Browsers ask for /favicon.ico whatever the page links: send them to ours. Resolved
    per request, since the static file's (hashed) name is known only once collected."""

    permanent = False

    def get_redirect_url(self, *args, **kwargs):
        return static("incidents/favicon.svg")


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("postmortems/", include("postmortems.urls")),
    path("status/", status_page, name="status-page"),
    path("status.json", status_json, name="status-json"),
    path("status/feed/", StatusFeed(), name="status-feed"),
    path("api/v1/", include("incidents.api.urls")),
    path("api/v1/", include("postmortems.api.urls")),
    path("api/v1/", include("remediation.api.urls")),
    path("api/v1/", include("alerts.api.urls")),
    path("api/v1/", include("oncall.api.urls")),
    path("api/v1/", include("playbooks.api.urls")),
    path("api/v1/", include("forensics.api.urls")),
    path("oncall/", include("oncall.urls")),
    path("forensics/", include("forensics.urls")),
    path("api/schema/", CachedSchemaView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from its own URL (?script), not
    # inline: our Content-Security-Policy runs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Redoc runs its search in a worker it builds from a blob: URL; only its page allows that.
    path(
        "api/redoc/",
        csp_update({"worker-src": ["'self'", "blob:"]})(
            SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
]

handler403 = "incidents.api.errors.permission_denied"
handler404 = "incidents.api.errors.not_found"
handler500 = "incidents.api.errors.server_error"
