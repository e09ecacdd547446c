"""Sitrep's admin site: the landing page is the commander's dashboard for those who
work incidents, and the stock list of apps is one click away at /admin/apps/.

It is the default site (incidents.apps.SitrepAdminConfig), so `admin.site` and every
`@admin.register` use it as before."""

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ..errors import DomainError
from . import dashboard

# Who gets the dashboard rather than the stock index: those who may read incidents.
DASHBOARD_PERMISSION = "incidents.view_incident"


class SitrepAdminSite(admin.AdminSite):
    site_header = "Sitrep"
    site_title = "Sitrep"
    index_title = "Incident response"

    def get_urls(self):
        return [
            path("apps/", self.admin_view(self.apps_index), name="apps"),
            path("dashboard/live/", self.admin_view(self.dashboard_live), name="dashboard_live"),
            path("dashboard/act/", self.admin_view(self.dashboard_act), name="dashboard_act"),
            *super().get_urls(),
        ]

    def shows_dashboard(self, request) -> bool:
        return request.user.has_perm(DASHBOARD_PERMISSION)

    def index(self, request, extra_context=None):
        """The dashboard for incident staff; the stock app list for everyone else."""
        if not self.shows_dashboard(request):
            return super().index(request, extra_context)
        context = {
            **self.each_context(request),
            "title": "Dashboard",
            "subtitle": None,
            **dashboard.context(request),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/dashboard.html", context)

    def dashboard_live(self, request):
        """The dashboard's sections alone, for its own refresh (htmx)."""
        if not self.shows_dashboard(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        context = {**self.each_context(request), **dashboard.context(request)}
        return TemplateResponse(request, "admin/dashboard_live.html", context)

    def dashboard_act(self, request):
        """Run one dashboard button's action, then back to the dashboard with a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        back = HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        action = dashboard.find_action(request.POST.get("action", ""))
        if action is None or not self.shows_dashboard(request):
            messages.error(request, "That action is not available.")
            return back
        try:
            done = action.run(request, request.POST.get("target", ""))
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, done)
        return back

    def apps_index(self, request, extra_context=None):
        """The stock index: every app and model the user may use."""
        context = {
            **self.each_context(request),
            "title": "All apps",
            "subtitle": None,
            "app_list": self.get_app_list(request),
            "shows_dashboard": self.shows_dashboard(request),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/apps_index.html", context)
