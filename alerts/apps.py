from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from incidents import extensions

        from . import vocabulary
        from .services import follow_incident
        from .setup import ensure_group_permissions, ensure_schedules

        vocabulary.register()
        # An incident resolved, closed or cancelled ends its alert group.
        extensions.transitioned.register(follow_incident)
        post_migrate.connect(ensure_group_permissions, sender=self)
        post_migrate.connect(ensure_schedules, sender=self)
