"""Default groups and their permissions, kept in step after every migrate."""

from django.conf import settings
from django.contrib.auth.models import Group, Permission

INCIDENT_MODELS = ["incident", "roleassignment", "timelineevent", "statusupdate"]
CATALOGUE_MODELS = ["service", "severity", "incidenttype"]
COMMS_MODELS = [
    "stakeholdergroup",
    "channeltarget",
    "messagetemplate",
    "escalationlevel",
    "businesscalendar",
    "holiday",
]


def perms(actions: list[str], models: list[str]) -> list[str]:
    return [f"{action}_{model}" for model in models for action in actions]


def default_groups() -> dict[str, list[str]]:
    """Return each default group with the codenames of its permissions."""
    commander = (
        perms(["view", "add", "change"], INCIDENT_MODELS)
        + perms(["view", "add", "change"], CATALOGUE_MODELS)
        # Their own API keys, for the integrations they run ("delete" is revoke).
        + perms(["view", "add", "delete"], ["apikey"])
        # Who is told what, through which channel; the outbox ("change" is retry).
        + perms(["view", "add", "change"], COMMS_MODELS)
        + perms(["view", "change"], ["notification"])
    )
    responder = (
        perms(["view", "add", "change"], INCIDENT_MODELS)
        + perms(["view"], CATALOGUE_MODELS + COMMS_MODELS)
        + perms(["view"], ["notification"])
    )
    viewer = perms(["view"], INCIDENT_MODELS + CATALOGUE_MODELS)
    return {
        "Incident commanders": commander,
        "Responders": responder,
        settings.SECURITY_GROUP: responder,
        "Stakeholders": viewer,
    }


def grant_group_permissions(app_label: str, groups: dict[str, list[str]]) -> None:
    """Create the groups and add any of `app_label`'s permissions they lack (never
    removes any: an administrator's changes are kept). Apps built on the core call
    this for their own models after migrate."""
    for name, codenames in groups.items():
        group, _ = Group.objects.get_or_create(name=name)
        granted = Permission.objects.filter(
            content_type__app_label=app_label, codename__in=codenames
        )
        group.permissions.add(*granted)


def ensure_default_groups(**kwargs) -> None:
    """Keep the default groups' permissions on the core's models (after every migrate)."""
    grant_group_permissions("incidents", default_groups())
