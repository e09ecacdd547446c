"""Default group permissions, kept in step after migrate."""

from django.conf import settings

from incidents.setup import grant_group_permissions, perms

POLICY = ["playbook", "playbookstep", "closerequirement"]


def ensure_group_permissions(**kwargs) -> None:
    # Steps are worked through the checklist page (its services), never edited as rows:
    # "change" on a step is the right to tick, skip, reopen and add.
    workers = perms(["view"], POLICY) + perms(["view", "change"], ["checkliststep"])
    grant_group_permissions(
        "playbooks",
        {
            # Commanders keep the playbooks as they keep the severity table.
            "Incident commanders": workers + perms(["add", "change", "delete"], POLICY),
            "Responders": workers,
            settings.SECURITY_GROUP: workers,
            "Stakeholders": perms(["view"], ["checkliststep"]),
        },
    )
