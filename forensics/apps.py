from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ForensicsConfig(AppConfig):
    name = "forensics"
    verbose_name = "Forensics"

    def ready(self):
        from incidents import extensions

        from . import checks, vocabulary  # noqa: F401  (checks registers the system check)
        from .review import add_review_facts
        from .services import start_clock_on_confidential, start_clock_on_declared
        from .setup import ensure_group_permissions, ensure_schedules

        vocabulary.register()
        # A security or data incident starts its breach notification clock when declared,
        # or when it is reclassified as one.
        extensions.declared.register(start_clock_on_declared)
        extensions.confidentiality_changed.register(start_clock_on_confidential)
        # Its review states the deadline, the notifications and the evidence's integrity.
        extensions.review_drafting.register(add_review_facts)
        post_migrate.connect(ensure_group_permissions, sender=self)
        post_migrate.connect(ensure_schedules, sender=self)
