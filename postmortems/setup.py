"""The default groups' permissions on reviews, kept in step after every migrate."""

from django.conf import settings

from incidents.setup import grant_group_permissions, perms

REVIEW_MODELS = ["postmortem", "contributingfactor", "timelineentry", "reviewdecision"]


def ensure_group_permissions(**kwargs) -> None:
    # Writers may remove a contributing factor they added; nothing else is deleted.
    writers = perms(["view", "add", "change"], REVIEW_MODELS) + ["delete_contributingfactor"]
    grant_group_permissions(
        "postmortems",
        {
            "Incident commanders": writers,
            "Responders": writers,
            settings.SECURITY_GROUP: writers,
            # Stakeholders read published reviews on /postmortems/ and nothing else.
            "Stakeholders": perms(["view"], ["postmortem"]),
        },
    )
