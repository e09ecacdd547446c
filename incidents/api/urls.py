from rest_framework.routers import DefaultRouter

from . import views

app_name = "api"

router = DefaultRouter()
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("services", views.ServiceViewSet, basename="service")
router.register("severities", views.SeverityViewSet, basename="severity")
router.register("incident-types", views.IncidentTypeViewSet, basename="incident-type")

urlpatterns = router.urls
