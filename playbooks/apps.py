from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlaybooksConfig(AppConfig):
    name = "playbooks"
    verbose_name = "Playbooks"

    def ready(self):
        from incidents import extensions

        from . import services
        from .setup import ensure_group_permissions

        # Declaring, or re-rating into a severity a playbook starts at, copies its steps.
        extensions.declared.register(services.start_on_declaration)
        extensions.severity_changed.register(services.start_on_severity_change)
        # A severity may want every required step ticked or skipped before closing.
        extensions.close_guard.register(services.require_steps_before_close)
        # A review's draft names the steps skipped, late or never done.
        extensions.review_drafting.register(services.review_gaps)
        post_migrate.connect(ensure_group_permissions, sender=self)
