"""transition_options: the moves the lifecycle allows, each with whether the guards would
accept it now — asked without writing anything."""

import pytest

from incidents import extensions, services
from incidents.errors import DomainError, StateConflict
from incidents.models import Service, Source, Status, TimelineEvent
from tests.reviews import resolve


def by_status(options):
    return {option.status: option for option in options}


@pytest.mark.django_db
@pytest.mark.usefixtures("core_only")
def test_every_move_the_lifecycle_allows_is_offered_in_order(declare, commander):
    incident = declare()
    options = services.transition_options(incident=incident, actor=commander)
    assert [option.status for option in options] == services.allowed_transitions(Status.DECLARED)
    assert all(option.allowed and option.reason == "" for option in options)
    assert options[0].label == "Investigating"


@pytest.mark.django_db
def test_a_registered_guard_refusal_is_a_disabled_move_with_its_reason(declare, commander):
    incident = declare()

    def no_identified(request):
        if request.to_status == Status.IDENTIFIED:
            raise StateConflict("Nobody may claim a cause before the logs are in.")

    with extensions.restored():
        extensions.transition_guard.register(no_identified)
        options = by_status(services.transition_options(incident=incident, actor=commander))
    assert options[Status.IDENTIFIED].allowed is False
    assert options[Status.IDENTIFIED].reason == "Nobody may claim a cause before the logs are in."
    assert options[Status.INVESTIGATING].allowed is True


@pytest.mark.django_db
def test_guards_see_the_actor_and_the_move(declare, commander):
    incident = declare()
    seen = []
    with extensions.restored():
        extensions.transition_guard.register(
            lambda request: seen.append((request.actor, request.from_status, request.to_status))
        )
        services.transition_options(incident=incident, actor=commander)
    assert (commander, Status.DECLARED, Status.RESOLVED) in seen


@pytest.mark.django_db
def test_the_postmortem_close_guard_disables_closing_with_its_reason(declare, commander):
    incident = declare()  # SEV1: a published review is required to close
    resolve(incident)  # starts the draft review
    incident.refresh_from_db()
    options = by_status(services.transition_options(incident=incident, actor=commander))
    assert set(options) == {Status.CLOSED, Status.INVESTIGATING}
    assert options[Status.CLOSED].allowed is False
    assert "cannot be closed" in options[Status.CLOSED].reason
    assert "draft" in options[Status.CLOSED].reason
    assert options[Status.INVESTIGATING].allowed is True
    # The dry run agrees with the real move.
    with pytest.raises(DomainError, match="cannot be closed"):
        services.incident_transition(
            incident=incident, to_status=Status.CLOSED, actor=commander, source=Source.ADMIN
        )


@pytest.mark.django_db
def test_the_dry_run_writes_nothing_even_when_a_guard_does(declare, commander):
    incident = declare()
    events = incident.timeline.count()

    def writing_guard(request):
        Service.objects.create(name=f"made by {request.to_status}", slug=request.to_status)

    with extensions.restored():
        extensions.transition_guard.register(writing_guard)
        options = services.transition_options(incident=incident, actor=commander)
    assert all(option.allowed for option in options)
    assert not Service.objects.exists()
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED
    assert incident.acknowledged_at is None
    assert incident.timeline.count() == events
    assert not TimelineEvent.objects.filter(kind=TimelineEvent.Kind.STATUS_CHANGE).exists()


@pytest.mark.django_db
def test_a_final_status_offers_no_moves(declare, commander):
    incident = declare()
    services.incident_transition(
        incident=incident, to_status=Status.CANCELLED, actor=commander, source=Source.ADMIN
    )
    incident.refresh_from_db()
    assert services.transition_options(incident=incident, actor=commander) == []
