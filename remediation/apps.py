from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "Remediation"

    def ready(self):
        from postmortems import extensions

        from . import vocabulary
        from .services import require_action_items_or_reason
        from .setup import ensure_group_permissions, ensure_schedules

        vocabulary.register()
        # A review is published with follow-up work, or with a reason why none is needed.
        extensions.publish_guard.register(require_action_items_or_reason)
        post_migrate.connect(ensure_group_permissions, sender=self)
        post_migrate.connect(ensure_schedules, sender=self)
