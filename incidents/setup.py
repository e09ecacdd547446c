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


def _perms(actions: list[str], models: list[str]) -> list[str]:
    return [f"{action}_{model}" for model in models for action in actions]


def default_groups() -> dict[str, list[str]]:
    """Return each default group with the codenames of its permissions."""
    commander = (
        _perms(["view", "add", "change"], INCIDENT_MODELS)
        + _perms(["view", "add", "change"], CATALOGUE_MODELS)
        # Their own API keys, for the integrations they run ("delete" is revoke).
        + _perms(["view", "add", "delete"], ["apikey"])
        # Who is told what, through which channel; the outbox ("change" is retry).
        + _perms(["view", "add", "change"], COMMS_MODELS)
        + _perms(["view", "change"], ["notification"])
    )
    responder = (
        _perms(["view", "add", "change"], INCIDENT_MODELS)
        + _perms(["view"], CATALOGUE_MODELS + COMMS_MODELS)
        + _perms(["view"], ["notification"])
    )
    viewer = _perms(["view"], INCIDENT_MODELS + CATALOGUE_MODELS)
    return {
        "Incident commanders": commander,
        "Responders": responder,
        settings.SECURITY_GROUP: responder,
        "Stakeholders": viewer,
    }


def ensure_default_groups(**kwargs) -> None:
    """Create the default groups and add any permission they lack (never removes any)."""
    for name, codenames in default_groups().items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(
            content_type__app_label="incidents", codename__in=codenames
        )
        group.permissions.add(*perms)
