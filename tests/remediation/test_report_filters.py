"""The remediation report's filters: read once (remediation.queries.report_filters_from)
for the admin page and the API, and refused alike by both."""

from datetime import date

import pytest
from django.http import QueryDict
from django.urls import reverse

from incidents.errors import DomainError
from incidents.models import Source
from remediation import services
from remediation.queries import ReportFilters, report_filters_from
from tests.api import client_for

PAGE = reverse("admin:remediation_remediationreport_changelist")
API = "/api/v1/remediation/report/"

BAD = [
    ({"created_from": "2026-13-01"}, "created_from", "Give a date as YYYY-MM-DD."),
    ({"created_to": "yesterday"}, "created_to", "Give a date as YYYY-MM-DD."),
    ({"service": "nope"}, "service", "Unknown service 'nope'."),
    ({"severity": "SEV9"}, "severity", "Unknown severity 'SEV9'."),
]


@pytest.fixture
def item(declare, api_service, commander):
    incident = declare(services=[api_service])
    return services.action_item_create(
        title="Add a pool alert",
        category="technical",
        incident=incident,
        team="Platform",
        actor=commander,
        source=Source.ADMIN,
    )


def test_filters_are_read_from_a_query_string(sev1, api_service):
    params = QueryDict(
        "created_from=2026-03-01&created_to=2026-03-31&service=api&team=+Platform+&severity=SEV1"
    )
    assert report_filters_from(params) == ReportFilters(
        created_from=date(2026, 3, 1),
        created_to=date(2026, 3, 31),
        service="api",
        team="Platform",
        severity="SEV1",
    )


def test_absent_or_blank_filters_filter_nothing(db):
    assert report_filters_from({}) == ReportFilters()
    assert report_filters_from(QueryDict("service=&team=%20&created_from=")) == ReportFilters()


@pytest.mark.parametrize("params, field, message", BAD)
def test_a_bad_filter_is_refused_naming_its_field(sev1, api_service, params, field, message):
    with pytest.raises(DomainError) as refused:
        report_filters_from(params)
    assert (refused.value.field, refused.value.message) == (field, message)


@pytest.mark.parametrize("params, field, message", BAD)
def test_admin_and_api_refuse_a_bad_filter_alike(client, item, commander, params, field, message):
    response = client_for(commander).get(API, params)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["attr"], error["code"], error["detail"]) == (field, "invalid", message)

    client.force_login(commander)
    response = client.get(PAGE, {**params, "team": "Platform"})
    assert response.status_code == 200
    assert response.context["form"].errors == {field: [message]}
    body = response.content.decode()
    assert message.replace("'", "&#x27;") in body
    # What was typed stays in the inputs.
    assert 'value="Platform"' in body
    # No filter is applied rather than some of them; and no CSV that would look filtered.
    assert response.context["report"]["summary"]["total"] == 1
    csv = client.get(PAGE, {**params, "format": "csv"})
    assert csv["Content-Type"].startswith("text/html")


def test_good_filters_give_the_same_figures_on_both(client, item, commander):
    params = {"service": "api", "team": "Platform", "created_from": "2000-01-01"}
    api_total = client_for(commander).get(API, params).json()["summary"]["total"]
    client.force_login(commander)
    page = client.get(PAGE, params)
    assert page.context["form"].errors == {}
    assert api_total == page.context["report"]["summary"]["total"] == 1
    other = client.get(PAGE, {**params, "team": "Payments"})
    assert other.context["report"]["summary"]["total"] == 0
