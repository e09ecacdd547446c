from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "Remediation"

    def ready(self):
        from postmortems import hooks

        from .services import require_action_items_or_reason
        from .setup import ensure_group_permissions, ensure_schedules

        # A review is published with follow-up work, or with a reason why none is needed.
        hooks.register_publish_guard(require_action_items_or_reason)
        post_migrate.connect(ensure_group_permissions, sender=self)
        post_migrate.connect(ensure_schedules, sender=self)
