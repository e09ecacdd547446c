from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Sitrep"
admin.site.site_title = "Sitrep"
admin.site.index_title = "Incident response"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
