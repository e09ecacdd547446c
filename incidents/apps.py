from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        from .setup import ensure_default_groups

        # Permissions only exist after migrate's own post_migrate step, so groups are
        # filled in then rather than in a data migration.
        post_migrate.connect(ensure_default_groups, sender=self)
