"""Fixtures for checklists: the default playbooks, a stricter playbook that starts at
SEV2, and the people who work them."""

import pytest
from django.apps import apps

from incidents.models import IncidentType, Severity
from playbooks.defaults import load_defaults
from playbooks.models import Playbook, PlaybookStep


@pytest.fixture
def playbooks(default_policy):
    """The reference's playbooks (a flushed database lost the migration's rows)."""
    load_defaults(apps)
    return {playbook.slug: playbook for playbook in Playbook.objects.all()}


@pytest.fixture
def major_outage(playbooks):
    """An extra outage playbook for SEV2 and worse: executive briefing within 30 min."""
    playbook = Playbook.objects.create(
        name="Major outage",
        slug="major-outage",
        incident_type=IncidentType.objects.get(slug="outage"),
        min_severity=Severity.objects.get(key="SEV2"),
    )
    PlaybookStep.objects.create(
        playbook=playbook,
        phase="communication",
        position=1,
        title="Brief the executives",
        required=True,
        due_within=30,
    )
    PlaybookStep.objects.create(
        playbook=playbook,
        phase="post_incident",
        position=1,
        title="Book the review meeting",
        required=False,
    )
    return playbook
