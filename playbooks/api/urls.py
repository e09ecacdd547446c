from django.urls import path

from . import views

urlpatterns = [
    path(
        "incidents/<str:reference>/checklist/",
        views.ChecklistView.as_view(),
        name="playbooks-checklist",
    ),
    path(
        "incidents/<str:reference>/checklist/<int:step_id>/",
        views.ChecklistStepView.as_view(),
        name="playbooks-checklist-step",
    ),
]
