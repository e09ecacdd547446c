"""Fixtures for reviews: a resolved SEV1 (resolving starts its draft), its people."""

import pytest

from incidents import services
from incidents.models import Source, Status
from postmortems.models import PostMortem
from tests.conftest import make_user


@pytest.fixture(autouse=True)
def _without_playbooks(without_playbooks):
    """Reviews are told here without playbooks' checklists, whose events would join
    every timeline and whose close guard every SEV1 (tests/playbooks: what a review
    learns from a checklist)."""


@pytest.fixture
def reviewer(db, django_user_model):
    """A second commander, who reviews what others write."""
    return make_user(django_user_model, "rita", "Incident commanders", is_staff=True)


@pytest.fixture
def stakeholder(db, django_user_model):
    """Reads published reviews and nothing else (not staff)."""
    return make_user(django_user_model, "sam", "Stakeholders")


@pytest.fixture
def incident(declare, commander):
    """Declare incidents commanded by alice (who then owns their reviews)."""

    def _incident(**overrides):
        return declare(**{"commander": commander, **overrides})

    return _incident


@pytest.fixture
def resolved(declare, commander, api_service):
    """A SEV1 declared, commanded by alice, acknowledged and resolved."""
    incident = declare(commander=commander, services=[api_service])
    services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    return services.incident_transition(
        incident=incident, to_status=Status.RESOLVED, source=Source.ADMIN
    )


@pytest.fixture
def postmortem(resolved) -> PostMortem:
    """The draft that resolving the SEV1 started, owned by its commander (alice)."""
    return PostMortem.objects.get(incident=resolved)
