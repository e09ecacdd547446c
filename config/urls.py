from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from incidents.views import StatusFeed, status_json, status_page

admin.site.site_header = "Sitrep"
admin.site.site_title = "Sitrep"
admin.site.index_title = "Incident response"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
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
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]

handler404 = "incidents.api.errors.not_found"
