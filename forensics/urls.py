from django.urls import path

from . import views

app_name = "forensics"

urlpatterns = [
    path("evidence/<int:pk>/download/", views.download, name="evidence-download"),
]
