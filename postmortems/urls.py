from django.urls import path, re_path

from . import views

app_name = "postmortems"

REFERENCE = r"(?P<reference>INC-\d{4}-\d{4,})"

urlpatterns = [
    path("", views.postmortem_list, name="list"),
    re_path(rf"^{REFERENCE}\.md$", views.postmortem_markdown, name="markdown"),
    re_path(rf"^{REFERENCE}/$", views.postmortem_detail, name="detail"),
]
