from rest_framework.routers import DefaultRouter

from . import views

app_name = "api"


class Router(DefaultRouter):
    # The API renders JSON only, so `roles.json` would be a second name for `roles/`;
    # DRF's suffix routes also pass a `format` argument our actions do not take (a 500).
    include_format_suffixes = False


router = Router()
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("services", views.ServiceViewSet, basename="service")
router.register("severities", views.SeverityViewSet, basename="severity")
router.register("incident-types", views.IncidentTypeViewSet, basename="incident-type")

urlpatterns = router.urls
