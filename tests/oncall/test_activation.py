"""Team activation: declaring an incident staffs its severity's roles from the rota."""

from datetime import UTC, datetime

import pytest
import time_machine

from incidents import notifications, services
from incidents.models import Notification, Role, Severity, Source
from oncall.models import OnCallRole, Page
from oncall.services.activation import activate

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("at_noon")]


@pytest.fixture
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def rota(make_person, make_team, make_rotation, api_service):
    """Platform owns the API; one person on call for each role it staffs."""
    team = make_team("Platform", services=[api_service])
    people = {}
    for role, name in [
        (OnCallRole.COMMANDER, "cora"),
        (OnCallRole.TECHNICAL_LEAD, "tess"),
        (OnCallRole.COMMUNICATIONS_LEAD, "cole"),
        (OnCallRole.SCRIBE, "sam"),
        (OnCallRole.SECURITY_LEAD, "sec"),
    ]:
        people[role] = make_person(name)
        make_rotation(team, role, members=[people[role]])
    return team, people


def holders(incident):
    return {
        assignment.role: assignment.user.username
        for assignment in incident.roles.filter(relieved_at__isnull=True)
    }


def paging_summaries(incident):
    return list(incident.timeline.filter(kind="paging").values_list("summary", flat=True))


def test_a_sev1_outage_staffs_commander_technical_communications_lead_and_scribe(
    declare, rota, api_service
):
    incident = declare(services=[api_service])
    assert holders(incident) == {
        Role.COMMANDER: "cora",
        Role.TECHNICAL_LEAD: "tess",
        Role.COMMUNICATIONS_LEAD: "cole",
        Role.SCRIBE: "sam",
    }
    pages = Page.objects.filter(incident=incident)
    assert sorted(pages.values_list("user__username", "reason")) == [
        ("cole", "activation"),
        ("cora", "activation"),
        ("sam", "activation"),
        ("tess", "activation"),
    ]
    # Each page is in the outbox, and the timeline names whom it paged as what.
    assert Notification.objects.filter(incident=incident, event="page").count() == 4
    assert any(
        "Paged tess (email tess@example.com now) as technical lead" in summary
        for summary in paging_summaries(incident)
    )


def test_a_sev1_security_incident_also_staffs_the_security_lead(
    declare, rota, api_service, security_type
):
    incident = declare(services=[api_service], incident_type=security_type)
    assert holders(incident)[Role.SECURITY_LEAD] == "sec"
    # Holding a role makes them a participant of the confidential incident.
    assert incident.confidential
    assert services.check_may_see(rota[1][OnCallRole.SECURITY_LEAD], incident, "user") is None


def test_a_sev3_staffs_only_the_technical_lead_and_scribe(declare, rota, api_service):
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    assert holders(incident) == {Role.TECHNICAL_LEAD: "tess", Role.SCRIBE: "sam"}


def test_a_role_already_held_is_kept(declare, rota, api_service, commander):
    incident = declare(services=[api_service], commander=commander)
    assert holders(incident)[Role.COMMANDER] == "alice"
    assert not Page.objects.filter(incident=incident, user__username="cora").exists()


def test_raising_the_severity_staffs_the_roles_now_missing(declare, rota, api_service, sev1):
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    services.incident_change_severity(
        incident=incident, severity=sev1, reason="Checkout down", actor=None, source=Source.API
    )
    assert holders(incident) == {
        Role.COMMANDER: "cora",
        Role.TECHNICAL_LEAD: "tess",
        Role.COMMUNICATIONS_LEAD: "cole",
        Role.SCRIBE: "sam",
    }
    # Tess and Sam were paged once, at the declaration, not again.
    assert Page.objects.filter(incident=incident, user__username="tess").count() == 1


def test_lowering_the_severity_staffs_nobody(declare, rota, api_service, sev1):
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    services.role_relieve(
        assignment=incident.roles.get(role=Role.SCRIBE), actor=None, source=Source.API
    )
    services.incident_change_severity(
        incident=incident,
        severity=Severity.objects.get(key="SEV4"),
        reason="Only staging",
        actor=None,
        source=Source.API,
    )
    assert holders(incident) == {Role.TECHNICAL_LEAD: "tess"}


def test_an_incident_of_no_owned_service_activates_the_default_team(
    declare, make_team, make_rotation, make_person
):
    make_team("Owners of nothing")
    default = make_team("Front desk", is_default=True)
    make_rotation(default, OnCallRole.TECHNICAL_LEAD, members=[make_person("dee")])
    make_rotation(default, OnCallRole.SCRIBE, members=[make_person("sue")])
    incident = declare(severity=Severity.objects.get(key="SEV3"))
    assert holders(incident) == {Role.TECHNICAL_LEAD: "dee", Role.SCRIBE: "sue"}


def test_the_first_owning_team_with_someone_on_call_staffs_each_role(
    declare, rota, api_service, make_team, make_rotation, make_person
):
    other = make_team("Another team", services=[api_service])  # before Platform by name
    make_rotation(other, OnCallRole.SCRIBE, members=[make_person("ann")])
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    assert holders(incident) == {Role.TECHNICAL_LEAD: "tess", Role.SCRIBE: "ann"}


def test_someone_on_call_for_two_roles_gets_one_page_naming_both(
    declare, make_team, make_rotation, make_person, api_service
):
    team = make_team("Platform", services=[api_service])
    solo = make_person("solo")
    make_rotation(team, OnCallRole.TECHNICAL_LEAD, members=[solo])
    make_rotation(team, OnCallRole.SCRIBE, members=[solo])
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    assert holders(incident) == {Role.TECHNICAL_LEAD: "solo", Role.SCRIBE: "solo"}
    page = Page.objects.get(incident=incident)
    assert page.message == "as technical lead and scribe"


def test_an_empty_rotation_warns_that_it_pages_nobody_and_tells_the_lead(
    declare, make_team, make_rotation, make_person, api_service, commander
):
    team = make_team("Platform", services=[api_service])
    make_rotation(team, OnCallRole.TECHNICAL_LEAD, members=[make_person("tess")])
    make_rotation(team, OnCallRole.SCRIBE, members=[])
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    assert holders(incident) == {Role.TECHNICAL_LEAD: "tess"}
    assert "Paged nobody: nobody is on call in Platform for scribe" in paging_summaries(incident)
    told = Notification.objects.get(incident=incident, event="page_problem")
    assert told.recipient == commander and "scribe" in told.body


def test_no_team_at_all_warns_and_tells_the_lead(declare, commander):
    incident = declare(severity=Severity.objects.get(key="SEV3"))
    assert holders(incident) == {}
    assert any("no team owns its services" in summary for summary in paging_summaries(incident))
    assert Notification.objects.filter(
        incident=incident, event="page_problem", recipient=commander
    ).exists()


def test_accepting_a_triage_candidate_activates_the_team(declare, rota, api_service):
    candidate = declare(services=[api_service], triage=True)
    assert holders(candidate) == {}
    services.incident_accept(incident=candidate, actor=None, source=Source.API)
    assert Role.TECHNICAL_LEAD in holders(candidate)


def test_activation_reads_the_rules_teams_and_rota_once(
    declare, rota, api_service, make_team, make_rotation, make_person,
    django_assert_max_num_queries,
):  # fmt: skip
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV4"))
    incident.roles.all().delete()
    # Teams and rotations that have nothing to do with it cost nothing more.
    for n in range(10):
        other = make_team(f"Other {n}")
        make_rotation(other, OnCallRole.TECHNICAL_LEAD, members=[make_person(f"o{n}")])
    # Rules, roles held, teams, the rota (3), then per person staffed the assignment and
    # the page (about eleven each): bounded by the roles staffed, not by any table's rows.
    with django_assert_max_num_queries(28):
        activate(incident=incident, actor=None, source=Source.SYSTEM)
    assert holders(incident) == {Role.TECHNICAL_LEAD: "tess", Role.SCRIBE: "sam"}


def test_a_role_the_owning_team_has_no_rota_for_is_staffed_from_the_default_team(
    declare, make_team, make_rotation, make_person, api_service
):
    owners = make_team("Platform", services=[api_service])
    make_rotation(owners, OnCallRole.TECHNICAL_LEAD, members=[make_person("tess")])
    desk = make_team("Incident response", is_default=True)
    make_rotation(desk, OnCallRole.SCRIBE, members=[make_person("sue")])
    make_rotation(desk, OnCallRole.TECHNICAL_LEAD, members=[make_person("dee")])
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    # The service's own team first; the default team for what it does not staff.
    assert holders(incident) == {Role.TECHNICAL_LEAD: "tess", Role.SCRIBE: "sue"}


def test_history_loaded_with_notifications_muted_pages_nobody(declare, rota, api_service):
    with notifications.muted():
        incident = declare(services=[api_service])
    assert holders(incident) == {}
    assert not Page.objects.exists()
    assert paging_summaries(incident) == []


def test_someone_staffed_is_paged_and_not_also_sent_the_role_assigned_email(
    declare, rota, api_service
):
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    tess = rota[1][OnCallRole.TECHNICAL_LEAD]
    events = set(
        Notification.objects.filter(incident=incident, recipient=tess).values_list(
            "event", flat=True
        )
    )
    assert events == {"page"}
