from django.urls import include, path

urlpatterns = [
    path("", include("oncall.api.schedules")),
    path("", include("oncall.api.pages")),
    path("", include("oncall.api.incidents")),
]
