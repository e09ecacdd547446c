from importlib import import_module

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class SitrepAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Sitrep's site (the dashboard) as the default site;
    named in INSTALLED_APPS in place of "django.contrib.admin"."""

    # Not the config "incidents" picks up by itself: that is IncidentsConfig.
    default = False
    default_site = "incidents.admin.site.SitrepAdminSite"

    def ready(self):
        # Import the site's package before anything touches `admin.site`: the package
        # registers admins on that lazy site as it loads, and the site class lives in it,
        # so the site must be first set up from inside that import, not around it
        # (which would set it up twice and lose the registrations).
        import_module("incidents.admin")
        super().ready()


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        from . import (
            checks,  # noqa: F401 - registers the deploy checks
            extensions,
        )
        from .models import Notification, TimelineEvent
        from .schedules import ensure_schedules
        from .setup import ensure_default_groups

        # The core's own words come first; the apps after it add theirs.
        extensions.register_vocabulary(kinds=TimelineEvent.Kind, events=Notification.Event)

        # Permissions only exist after migrate's own post_migrate step, so groups are
        # filled in then rather than in a data migration; schedules live beside them.
        post_migrate.connect(ensure_default_groups, sender=self)
        post_migrate.connect(ensure_schedules, sender=self)
