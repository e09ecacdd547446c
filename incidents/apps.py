from django.apps import AppConfig
from django.db.models.signals import post_migrate


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
