from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

app_name = "remediation-api"

router = SimpleRouter()
router.register("action-items", views.ActionItemViewSet, basename="action-item")

urlpatterns = [
    path("remediation/report/", views.RemediationReportView.as_view(), name="report"),
    *router.urls,
]
