from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = "On-call and paging"

    def ready(self):
        from incidents import extensions

        from . import checks, vocabulary  # noqa: F401  (checks registers the system checks)
        from .provider import OnCallPaging
        from .services.activation import activate_on_declared, activate_on_severity
        from .services.paging import stop_pages_on_transition
        from .setup import ensure_group_permissions, ensure_schedules

        vocabulary.register()
        # Rotations and escalation policies page instead of the core's ladder.
        extensions.paging.provide(OnCallPaging())
        # Declaring an incident (or raising its severity) staffs its roles from the rota.
        extensions.declared.register(activate_on_declared)
        extensions.severity_changed.register(activate_on_severity)
        # Acknowledging, resolving or cancelling an incident stops its pages repeating.
        extensions.transitioned.register(stop_pages_on_transition)
        post_migrate.connect(ensure_group_permissions, sender=self)
        post_migrate.connect(ensure_schedules, sender=self)
