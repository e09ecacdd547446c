from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PostmortemsConfig(AppConfig):
    name = "postmortems"
    verbose_name = "Post-mortems"

    def ready(self):
        from incidents import extensions

        from . import vocabulary
        from .services import require_published_postmortem, start_postmortem_on_resolve
        from .setup import ensure_group_permissions

        # The core asks us, without importing us, whether an incident may close and
        # tells us when one moves (DESIGN.md: dependencies point one way).
        vocabulary.register()
        extensions.close_guard.register(require_published_postmortem)
        extensions.transitioned.register(start_postmortem_on_resolve)
        post_migrate.connect(ensure_group_permissions, sender=self)
