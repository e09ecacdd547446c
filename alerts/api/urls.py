from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views
from .intake import HeartbeatView, intake_view

app_name = "alerts-api"

# SimpleRouter: no API root and no format-suffix routes (the core's Router drops those too).
router = SimpleRouter()
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("alert-rules", views.DetectionRuleViewSet, basename="alert-rule")
router.register("silences", views.SilenceViewSet, basename="silence")
router.register("alert-sources", views.AlertSourceViewSet, basename="alert-source")

urlpatterns = [
    # Before the router's: alerts/{id}/ takes digits only, and these must never reach it.
    path("alerts/alertmanager/", intake_view("alertmanager"), name="intake-alertmanager"),
    path("alerts/grafana/", intake_view("grafana"), name="intake-grafana"),
    path("alerts/generic/", intake_view("generic"), name="intake-generic"),
    path("alerts/<slug:source>/heartbeat/", HeartbeatView.as_view(), name="heartbeat"),
    *router.urls,
]
