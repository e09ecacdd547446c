from django.urls import path

from . import views

app_name = "forensics-api"

urlpatterns = [
    path(
        "incidents/<str:reference>/evidence/",
        views.IncidentEvidenceView.as_view(),
        name="incident-evidence",
    ),
    path(
        "incidents/<str:reference>/evidence/export/",
        views.IncidentEvidenceExportView.as_view(),
        name="incident-evidence-export",
    ),
    path("evidence/<int:pk>/", views.EvidenceDetailView.as_view(), name="evidence-detail"),
    path(
        "evidence/<int:pk>/download/",
        views.EvidenceDownloadView.as_view(),
        name="evidence-download",
    ),
    path(
        "evidence/<int:pk>/custody/", views.EvidenceCustodyView.as_view(), name="evidence-custody"
    ),
    path("incidents/<str:reference>/breach/", views.IncidentBreachView.as_view(), name="breach"),
    path(
        "incidents/<str:reference>/breach/regulator-notified/",
        views.RegulatorNotifiedView.as_view(),
        name="breach-regulator-notified",
    ),
    path(
        "incidents/<str:reference>/breach/data-subjects-notified/",
        views.DataSubjectsNotifiedView.as_view(),
        name="breach-data-subjects-notified",
    ),
]
