"""The remediation report's figures over a hand-checked data set (remediation.queries)."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import Service, Source
from remediation import services
from remediation.models import ActionItem
from remediation.queries import ReportFilters, remediation_report
from tests.conftest import make_user

TODAY = date(2026, 3, 20)
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def at(month, day, hour=0):
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


@dataclass
class DataSet:
    api: Service
    web: Service
    a: object  # SEV1 on the Public API
    b: object  # SEV2 on the Web shop
    c: object  # confidential SEV1, no service
    items: dict = field(default_factory=dict)


def make_item(incident, title, *, actor, created, team, priority, category, due, moves=()):
    """Create an item at `created`, then make each (status, note, when) move."""
    with time_machine.travel(created, tick=False):
        item = services.action_item_create(
            incident=incident,
            title=title,
            category=category,
            priority=priority,
            team=team,
            due_on=due,
            actor=actor,
            source=Source.ADMIN,
        )
    for status, note, when in moves:
        with time_machine.travel(when, tick=False):
            item = services.action_item_transition(
                item=item,
                to_status=status,
                note=note,
                actor=actor,
                source=Source.ADMIN,
            )
    return item


def web_service():
    return Service.objects.get_or_create(
        slug="web", defaults={"name": "Web shop", "owning_team": "Payments", "tier": 2}
    )[0]


def build(declare, sev1, sev2, security_type, api_service, actor, suffix="") -> DataSet:
    """Nine items on three incidents; see the module's expected figures."""
    web = web_service()
    a = declare(title=f"API errors{suffix}", severity=sev1, services=[api_service])
    b = declare(title=f"Web shop slow{suffix}", severity=sev2, services=[web])
    c = declare(
        title=f"Leaked token{suffix}", severity=sev1, incident_type=security_type, confidential=True
    )
    S = ActionItem.Status
    data = DataSet(api=api_service, web=web, a=a, b=b, c=c)
    spec = {
        # name: incident, team, priority, category, due, created, moves
        "a1": (a, "Platform", "P1", "technical", date(2026, 3, 10), at(3, 1, 9), ()),
        "a2": (
            a, "Platform", "P2", "process", date(2026, 3, 18), at(3, 2, 9),
            [(S.BLOCKED, "Waiting on vendor", at(3, 5, 12))],
        ),
        "a3": (
            a, "Payments", "P2", "technical", date(2026, 4, 1), at(3, 3),
            [(S.DONE, "Load test passes", at(3, 5))],
        ),
        "a4": (
            a, "Payments", "P3", "training", date(2026, 3, 1), at(2, 20),
            [(S.WONT_DO, "Covered elsewhere", at(2, 25))],
        ),
        "b1": (
            b, "Platform", "P3", "technical", date(2026, 3, 25), at(3, 10),
            [(S.IN_PROGRESS, "", at(3, 11))],
        ),
        "b2": (
            b, "Payments", "P4", "process", date(2026, 3, 15), at(3, 6),
            [(S.DONE, "", at(3, 10, 12))],
        ),
        "b3": (
            b, "", "P1", "training", date(2026, 3, 19), at(3, 11),
            [(S.BLOCKED, "No trainer", at(3, 12))],
        ),
        "b4": (
            b, "Platform", "P4", "technical", date(2026, 3, 30), at(3, 12),
            [(S.DONE, "", at(3, 13, 12))],
        ),
        "c1": (c, "Platform", "P1", "technical", date(2026, 3, 15), at(3, 5), ()),
    }  # fmt: skip
    for name, (incident, team, priority, category, due, created, moves) in spec.items():
        data.items[name] = make_item(
            incident,
            f"{name}{suffix}",
            actor=actor,
            created=created,
            team=team,
            priority=priority,
            category=category,
            due=due,
            moves=moves,
        )
    return data


def row(group, total, open_, blocked, done, wont_do, overdue, rate):
    return {
        "group": group,
        "total": total,
        "open": open_,
        "blocked": blocked,
        "done": done,
        "wont_do": wont_do,
        "overdue": overdue,
        "completion_rate": rate,
    }


def summary(total, open_, blocked, done, wont_do, overdue, rate):
    return {k: v for k, v in row(None, total, open_, blocked, done, wont_do, overdue, rate).items()
            if k != "group"}  # fmt: skip


def report(user, **filters):
    with time_machine.travel(NOW, tick=False):
        return remediation_report(user, ReportFilters(**filters), today=TODAY)


@pytest.fixture
def data(declare, sev1, sev2, security_type, api_service, commander):
    return build(declare, sev1, sev2, security_type, api_service, commander)


# Everything below is seen by bob (a responder, no part in the confidential incident):
# items a1–a4 and b1–b4.


def test_summary_counts_and_completion_rate(data, responder):
    figures = report(responder)
    # open = open + in progress + blocked; completion = 3 done / (8 - 1 won't do)
    assert figures["summary"] == summary(8, 4, 2, 3, 1, 3, 0.429)
    assert figures["today"] == TODAY


def test_median_days_to_complete_odd_count(data, responder):
    # done after 2.0 (a3), 4.5 (b2) and 1.5 (b4) days: the middle one
    assert report(responder)["median_days_to_complete"] == 2.0


def test_median_days_to_complete_even_count_averages_the_middle_two(data, responder):
    # SEV2 only: 4.5 and 1.5 days
    assert report(responder, severity="SEV2")["median_days_to_complete"] == 3.0


def test_median_is_none_without_done_items(data, responder):
    figures = report(responder, created_to=date(2026, 3, 2))
    assert figures["summary"]["done"] == 0
    assert figures["median_days_to_complete"] is None


def test_by_status(data, responder):
    rows = report(responder)["by_status"]
    assert [(r["group"], r["total"]) for r in rows] == [
        ("blocked", 2),
        ("done", 3),
        ("in_progress", 1),
        ("open", 1),
        ("wont_do", 1),
    ]


def test_by_priority(data, responder):
    assert report(responder)["by_priority"] == [
        row("P1", 2, 2, 1, 0, 0, 2, 0.0),
        row("P2", 2, 1, 1, 1, 0, 1, 0.5),
        row("P3", 2, 1, 0, 0, 1, 0, 0.0),
        row("P4", 2, 0, 0, 2, 0, 0, 1.0),
    ]


def test_by_category(data, responder):
    assert report(responder)["by_category"] == [
        row("process", 2, 1, 1, 1, 0, 1, 0.5),
        row("technical", 4, 2, 0, 2, 0, 1, 0.5),
        row("training", 2, 1, 1, 0, 1, 1, 0.0),
    ]


def test_by_team_names_items_without_a_team(data, responder):
    assert report(responder)["by_team"] == [
        row("(no team)", 1, 1, 1, 0, 0, 1, 0.0),
        row("Payments", 3, 0, 0, 2, 1, 0, 1.0),
        row("Platform", 4, 3, 1, 1, 0, 2, 0.25),
    ]


def test_by_service(data, responder):
    assert report(responder)["by_service"] == [
        row("Public API", 4, 2, 1, 1, 1, 2, 0.333),
        row("Web shop", 4, 2, 1, 2, 0, 1, 0.5),
    ]


def test_blockers_oldest_first_with_days_blocked(data, responder):
    blockers = report(responder)["blockers"]
    assert [(r["item"].title, r["blocked_days"]) for r in blockers] == [("a2", 15), ("b3", 8)]
    assert blockers[0]["item"].blocked_reason == "Waiting on vendor"


def test_overdue_lists_unfinished_items_past_due_with_days(data, responder):
    overdue = report(responder)["overdue"]
    # a4 (won't do) and b2 (done) are past due but finished: not overdue
    assert [(r["item"].title, r["days_overdue"]) for r in overdue] == [
        ("a1", 10),
        ("a2", 2),
        ("b3", 1),
    ]


def test_today_decides_what_is_overdue(data, responder):
    with time_machine.travel(NOW, tick=False):
        earlier = remediation_report(responder, today=date(2026, 3, 11))
    assert earlier["summary"]["overdue"] == 1  # only a1 (due 03-10)
    assert [r["days_overdue"] for r in earlier["overdue"]] == [1]


# --- filters ----------------------------------------------------------------------------


def test_created_from_filter(data, responder):
    figures = report(responder, created_from=date(2026, 3, 3))
    # a3, b1, b2, b3, b4
    assert figures["summary"] == summary(5, 2, 1, 3, 0, 1, 0.6)
    assert figures["median_days_to_complete"] == 2.0


def test_created_to_filter(data, responder):
    figures = report(responder, created_to=date(2026, 3, 5))
    # a1, a2, a3, a4
    assert figures["summary"] == summary(4, 2, 1, 1, 1, 2, 0.333)


def test_created_range_is_inclusive(data, responder):
    figures = report(responder, created_from=date(2026, 3, 3), created_to=date(2026, 3, 10))
    # a3 (03-03), b2 (03-06), b1 (03-10)
    assert figures["summary"] == summary(3, 1, 0, 2, 0, 0, 0.667)


def test_service_filter(data, responder):
    figures = report(responder, service="web")
    assert figures["summary"] == summary(4, 2, 1, 2, 0, 1, 0.5)
    assert figures["by_service"] == [row("Web shop", 4, 2, 1, 2, 0, 1, 0.5)]
    assert [r["item"].title for r in figures["overdue"]] == ["b3"]


def test_team_filter(data, responder):
    figures = report(responder, team="Payments")
    assert figures["summary"] == summary(3, 0, 0, 2, 1, 0, 1.0)
    assert [r["group"] for r in figures["by_team"]] == ["Payments"]
    assert figures["blockers"] == [] and figures["overdue"] == []


def test_severity_filter(data, responder):
    figures = report(responder, severity="SEV1")
    assert figures["summary"] == summary(4, 2, 1, 1, 1, 2, 0.333)
    assert [r["item"].title for r in figures["blockers"]] == ["a2"]


def test_filters_combine(data, responder):
    figures = report(responder, severity="SEV2", team="Platform")
    # b1 (in progress), b4 (done)
    assert figures["summary"] == summary(2, 1, 0, 1, 0, 0, 0.5)


def test_no_items_gives_empty_figures(data, responder):
    figures = report(responder, team="Nobody")
    assert figures["summary"] == summary(0, 0, 0, 0, 0, 0, None)
    assert figures["median_days_to_complete"] is None
    assert figures["by_priority"] == figures["by_service"] == []


# --- confidentiality --------------------------------------------------------------------


def test_confidential_items_excluded_for_those_who_cannot_see_them(data, outsider):
    figures = report(outsider)
    assert figures["summary"]["total"] == 8
    assert "c1" not in [r["item"].title for r in figures["overdue"]]
    assert "(no service)" not in [r["group"] for r in figures["by_service"]]


def test_security_member_sees_confidential_items(data, security_member):
    figures = report(security_member)
    assert figures["summary"] == summary(9, 5, 2, 3, 1, 4, 0.375)
    # Where the NULL group sorts depends on the database (first on SQLite, last on PostgreSQL).
    assert sorted(figures["by_service"], key=lambda r: r["group"]) == [
        row("(no service)", 1, 1, 0, 0, 0, 1, 0.0),
        row("Public API", 4, 2, 1, 1, 1, 2, 0.333),
        row("Web shop", 4, 2, 1, 2, 0, 1, 0.5),
    ]
    assert [(r["item"].title, r["days_overdue"]) for r in figures["overdue"]] == [
        ("a1", 10),
        ("c1", 5),
        ("a2", 2),
        ("b3", 1),
    ]


def test_participant_of_confidential_incident_sees_its_items(data, commander):
    assert report(commander)["summary"]["total"] == 9  # alice declared it


# --- cost -------------------------------------------------------------------------------


def _report_queries(user) -> int:
    user = type(user).objects.get(pk=user.pk)  # as a request has it: nothing cached on it
    with CaptureQueriesContext(connection) as queries:
        figures = report(user)
    return len(queries), figures


def test_query_count_does_not_grow_with_the_data(
    declare, sev1, sev2, security_type, api_service, commander, django_user_model
):
    viewer = make_user(django_user_model, "viv", "Security", is_staff=True)
    build(declare, sev1, sev2, security_type, api_service, commander)
    small, figures = _report_queries(viewer)
    assert figures["summary"]["total"] == 9
    for copy in ("-2", "-3"):
        build(declare, sev1, sev2, security_type, api_service, commander, suffix=copy)
    large, figures = _report_queries(viewer)
    assert figures["summary"]["total"] == 27
    assert figures["median_days_to_complete"] == 2.0
    assert large == small
