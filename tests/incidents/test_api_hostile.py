"""Hostile input to the REST API gets a 4xx in the error shape, never a 500, and a
request costs the same few queries however long the lists it sends.

Huge and deeply nested bodies, format-suffix URLs, lists beyond their caps, values of
the wrong type, pagination and date parameters out of range, and times far in the past
or future: each found answering 500 (or silently doing the wrong thing) by an outside
security test.
"""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from incidents.api.parsers import MAX_DEPTH, nests_deeper_than
from incidents.api.serializers import MAX_SERVICES
from incidents.models import Incident, Service, Severity, Source, StatusUpdate, TimelineEvent
from postmortems import services as postmortem_services
from postmortems.api.serializers import (
    MAX_FACTORS,
    MAX_PEOPLE,
    MAX_RELATED_INCIDENTS,
    MAX_TIMELINE_MARKS,
)
from postmortems.models import ContributingFactor, PostMortem
from remediation import services as remediation_services
from tests.api import client_for, errors
from tests.conftest import make_user
from tests.incidents.test_api import documented_validation_errors
from tests.reviews import resolve

INCIDENTS = "/api/v1/incidents/"
POSTMORTEMS = "/api/v1/postmortems/"
ACTION_ITEMS = "/api/v1/action-items/"
DECLARE = {"title": "Checkout returns 502", "severity": "SEV1", "type": "outage"}


@pytest.fixture
def api(commander):
    # A 500 must come back as a response here, not as the view's exception.
    return client_for(commander, raise_request_exception=False)


@pytest.fixture
def incident(declare, commander):
    return declare(commander=commander)


@pytest.fixture
def postmortem(incident) -> PostMortem:
    """The draft that resolving the SEV1 started, owned by its commander (alice)."""
    return resolve(incident)


@pytest.fixture
def write_urls(incident, postmortem):
    """(method, url) of an endpoint of each resource that reads a JSON body."""
    item = remediation_services.action_item_create(
        incident=incident,
        title="Add a pool alarm",
        category="technical",
        source=Source.ADMIN,
    )
    reference = incident.reference
    return {
        "declare": ("post", INCIDENTS),
        "edit incident": ("patch", f"{INCIDENTS}{reference}/"),
        "timeline entry": ("post", f"{INCIDENTS}{reference}/timeline/"),
        "status update": ("post", f"{INCIDENTS}{reference}/updates/"),
        "edit post-mortem": ("patch", f"{POSTMORTEMS}{reference}/"),
        "action item": ("post", ACTION_ITEMS),
        "edit action item": ("patch", f"{ACTION_ITEMS}{item.pk}/"),
    }


def send(client, method, url, raw: str):
    return getattr(client, method)(url, raw, content_type="application/json")


def only_error(response) -> dict:
    errors(response)  # checks the shape
    [error] = response.json()["errors"]
    return error


WRITES = [
    "declare",
    "edit incident",
    "timeline entry",
    "status update",
    "edit post-mortem",
    "action item",
    "edit action item",
]


# --- bodies too large or too deep -----------------------------------------------------


@pytest.mark.parametrize("megabytes", [5, 50])
@pytest.mark.parametrize("endpoint", WRITES)
def test_body_over_the_size_limit_is_413_in_error_shape(api, write_urls, endpoint, megabytes):
    method, url = write_urls[endpoint]
    raw = json.dumps({**DECLARE, "summary": "x" * (megabytes * 1_000_000)})
    response = send(api, method, url, raw)
    assert response.status_code == 413
    assert response.json()["type"] == "client_error"
    assert only_error(response) == {
        "code": "request_too_large",
        "detail": "The request body is larger than the limit of 2,621,440 bytes.",
        "attr": None,
    }


def test_refused_large_body_declares_nothing(api, sev1, outage):
    raw = json.dumps({**DECLARE, "summary": "x" * 5_000_000})
    assert send(api, "post", INCIDENTS, raw).status_code == 413
    assert not Incident.objects.exists()


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 10_000, 100_000])
@pytest.mark.parametrize("endpoint", WRITES)
def test_body_nested_too_deep_is_400_parse_error(api, write_urls, endpoint, depth):
    method, url = write_urls[endpoint]
    response = send(api, method, url, "[" * depth + "]" * depth)
    assert response.status_code == 400
    error = only_error(response)
    assert error["code"] == "parse_error"
    assert f"nested deeper than {MAX_DEPTH} levels" in error["detail"]


def test_body_nested_to_the_limit_reaches_validation(api, sev1, outage):
    summary = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    raw = f'{{"title": "x", "severity": "SEV1", "type": "outage", "summary": {summary}}}'
    response = send(api, "post", INCIDENTS, raw)
    assert response.status_code == 400
    assert errors(response) == [("summary", "invalid")]  # not a string; parsed fine


@pytest.mark.parametrize(
    "data, deeper_than_2",
    [
        (1, False),
        ([], False),
        ([[]], False),
        ([[[]]], True),
        ({"a": {"b": 1}}, False),
        ({"a": [{"b": []}]}, True),
        ([1, "x", {"a": None}], False),
    ],
)
def test_nesting_depth_counts_arrays_and_objects(data, deeper_than_2):
    assert nests_deeper_than(data, 2) is deeper_than_2


def test_schema_documents_413_where_a_body_is_read(db):
    paths = APIClient().get("/api/schema/", {"format": "json"}).json()["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            reads_body = "requestBody" in operation and method in {"post", "patch"}
            assert ("413" in operation["responses"]) is reads_body, (method, path)


# --- format-suffix routes -------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    [
        "incidents.json",
        "incidents/{reference}.json",
        "incidents/{reference}/roles.json",
        "incidents/{reference}/timeline.json",
        "incidents/{reference}/updates.json",
        "incidents/{reference}/acknowledge.json",
        "services.json",
        "postmortems.json",
        "postmortems/{reference}.json",
        "action-items.json",
        ".json",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_format_suffix_routes_are_404_in_error_shape(api, incident, suffix, method):
    url = "/api/v1/" + suffix.replace("{reference}", incident.reference)
    response = getattr(api, method)(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert only_error(response)["code"] == "not_found"


# --- list inputs: capped, and looked up in one query ----------------------------------


def _people(django_user_model, count):
    return [
        make_user(django_user_model, f"user{n}", "Incident commanders", is_staff=True).username
        for n in range(count)
    ]


def _services(count):
    return [Service.objects.create(name=f"Service {n}", slug=f"svc-{n}").slug for n in range(count)]


def _incidents(declare, count):
    return [declare(title=f"Related {n}").reference for n in range(count)]


def _factors(count):
    return [{"category": "process", "description": f"Factor {n}"} for n in range(count)]


def _marks(postmortem, count):
    ids = list(postmortem.timeline.values_list("id", flat=True))
    return [{"id": ids[n % len(ids)], "is_key": True} for n in range(count)]


def _list_input(field, count, *, declare, django_user_model, postmortem):
    """Return `count` valid values for the list field, made as cheaply as the field allows
    (a list over the cap is refused before any item is looked at, so repeats will do)."""
    made = min(count, 40)
    values = {
        "services": lambda: _services(made),
        "reviewers": lambda: _people(django_user_model, made),
        "participants": lambda: _people(django_user_model, made),
        "related_incidents": lambda: _incidents(declare, made),
        "contributing_factors": lambda: _factors(made),
        "timeline": lambda: _marks(postmortem, made),
    }[field]()
    return (values * (count // len(values) + 1))[:count]


LISTS = [
    # (method, resource, field, cap)
    ("post", "incidents", "services", MAX_SERVICES),
    ("patch", "incidents", "services", MAX_SERVICES),
    ("patch", "postmortems", "reviewers", MAX_PEOPLE),
    ("patch", "postmortems", "participants", MAX_PEOPLE),
    ("patch", "postmortems", "related_incidents", MAX_RELATED_INCIDENTS),
    ("patch", "postmortems", "contributing_factors", MAX_FACTORS),
    ("patch", "postmortems", "timeline", MAX_TIMELINE_MARKS),
]


def _request(api, method, resource, incident, field, values):
    if method == "post":
        return api.post(INCIDENTS, {**DECLARE, field: values}, format="json")
    prefix = {"incidents": INCIDENTS, "postmortems": POSTMORTEMS}[resource]
    return api.patch(f"{prefix}{incident.reference}/", {field: values}, format="json")


@pytest.mark.parametrize("over", [1, 10_000])
@pytest.mark.parametrize("method, resource, field, cap", LISTS)
def test_list_over_its_cap_is_400_naming_it_and_changes_nothing(
    api, declare, django_user_model, incident, postmortem, method, resource, field, cap, over
):
    values = _list_input(
        field,
        cap + over,
        declare=declare,
        django_user_model=django_user_model,
        postmortem=postmortem,
    )
    incidents, versions = Incident.objects.count(), postmortem.history.count()
    api.get(INCIDENTS)  # the key's first use stamps last_used_at
    with CaptureQueriesContext(connection) as not_a_list:
        _request(api, method, resource, incident, field, {})
    with CaptureQueriesContext(connection) as queries:
        response = _request(api, method, resource, incident, field, values)
    assert response.status_code == 400
    assert errors(response) == [(field, "max_length")]
    assert f"no more than {cap} elements" in only_error(response)["detail"]
    # Refused as a whole, as cheaply as a value of the wrong type: no item looked up.
    assert len(queries) == len(not_a_list)
    assert Incident.objects.count() == incidents
    assert postmortem.history.count() == versions
    assert not ContributingFactor.objects.exists()


@pytest.mark.parametrize("method, resource, field, cap", LISTS)
def test_list_at_its_cap_is_accepted(
    api, declare, django_user_model, incident, postmortem, method, resource, field, cap
):
    values = _list_input(
        field, cap, declare=declare, django_user_model=django_user_model, postmortem=postmortem
    )
    response = _request(api, method, resource, incident, field, values)
    assert response.status_code in (200, 201), response.content


@pytest.mark.parametrize("method, resource, field, cap", LISTS)
def test_schema_gives_each_list_its_cap(method, resource, field, cap, db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    name = {
        ("post", "incidents"): "IncidentCreateRequest",
        ("patch", "incidents"): "PatchedIncidentUpdateRequest",
        ("patch", "postmortems"): "PatchedPostMortemUpdateRequest",
    }[method, resource]
    documented = schema["components"]["schemas"][name]["properties"][field]
    assert documented["type"] == "array"
    assert documented["maxItems"] == cap
    assert f"{cap}" in documented["description"]


def _queries_for(api, method, resource, incident, field, values) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = _request(api, method, resource, incident, field, values)
    assert response.status_code in (200, 201), response.content
    return len(queries)


BULK_LOOKUPS = [entry for entry in LISTS if entry[2] not in ("contributing_factors", "timeline")]


@pytest.mark.parametrize("method, resource, field, cap", BULK_LOOKUPS)
def test_list_of_names_costs_the_same_queries_for_1_or_40(
    api, declare, django_user_model, commander, postmortem, method, resource, field, cap
):
    forty = _list_input(
        field, 40, declare=declare, django_user_model=django_user_model, postmortem=postmortem
    )
    # Each count starts from the same state: a new incident (and its draft review).
    first, second = (declare(title=f"Target {n}", commander=commander) for n in range(2))
    if resource == "postmortems":
        resolve(first), resolve(second)
    api.get(INCIDENTS)  # the key's first use stamps last_used_at
    one = _queries_for(api, method, resource, first, field, forty[:1])
    assert _queries_for(api, method, resource, second, field, forty) == one


@pytest.mark.parametrize(
    "method, resource, field",
    [
        ("post", "incidents", "services"),
        ("patch", "incidents", "services"),
        ("patch", "postmortems", "reviewers"),
        ("patch", "postmortems", "participants"),
        ("patch", "postmortems", "related_incidents"),
    ],
)
def test_unknown_names_in_a_list_are_all_named_in_one_error(
    api, incident, postmortem, api_service, commander, method, resource, field
):
    known = {"services": "api", "related_incidents": incident.reference}.get(field, "alice")
    values = [known, "nope", "gone", "nope"]
    response = _request(api, method, resource, incident, field, values)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["attr"], error["code"]) == (field, "does_not_exist")
    assert error["detail"].endswith(": 'nope', 'gone'.")


def test_confidential_related_incident_is_unknown_to_those_who_may_not_see_it(
    api, declare, security_type, responder, incident, postmortem
):
    hidden = declare(title="Badge cloned", incident_type=security_type, actor=responder)
    response = _request(
        api, "patch", "postmortems", incident, "related_incidents", [hidden.reference]
    )
    assert response.status_code == 400
    assert errors(response) == [("related_incidents", "does_not_exist")]


def test_a_name_given_twice_counts_once_in_the_order_given(api, incident, api_service):
    Service.objects.create(name="Web", slug="web")
    response = api.patch(
        f"{INCIDENTS}{incident.reference}/", {"services": ["web", "api", "web"]}, format="json"
    )
    assert response.status_code == 200
    assert sorted(response.json()["services"]) == ["api", "web"]


@pytest.mark.parametrize("value", [{}, {"api": "api"}, "api", 3, None])
@pytest.mark.parametrize("method", ["post", "patch"])
def test_services_that_are_not_a_list_are_400_and_keep_the_services(
    api, declare, api_service, method, value
):
    incident = declare(services=[api_service])
    response = _request(api, method, "incidents", incident, "services", value)
    assert response.status_code == 400
    [(attr, code)] = errors(response)
    assert attr == "services"
    assert code in {"not_a_list", "null"}
    assert list(incident.services.values_list("slug", flat=True)) == ["api"]


@pytest.mark.parametrize(
    "field, items, detail",
    [
        ("services", ["api", ""], "Item 1: This field may not be blank."),
        ("services", [["api"]], "Item 0: Not a valid string."),
        (
            "contributing_factors",
            [{"category": "process", "description": "x"}, {"category": "zzz"}],
            'Item 1 (category): "zzz" is not a valid choice.',
        ),
        (
            "contributing_factors",
            ["x"],
            "Item 0: Invalid data. Expected a dictionary, but got str.",
        ),
        ("timeline", [{"id": 0, "is_key": True}], "Item 0 (id): "),
    ],
)
def test_a_bad_item_is_reported_on_its_list_with_its_position(
    api, incident, postmortem, api_service, field, items, detail
):
    # The schema can document the list's own errors, not one per position.
    resource = "incidents" if field == "services" else "postmortems"
    response = _request(api, "patch", resource, incident, field, items)
    assert response.status_code == 400
    assert errors(response) == [(field, "invalid")]
    assert only_error(response)["detail"].startswith(detail)


@pytest.mark.parametrize("field", ["reviewers", "participants", "related_incidents", "timeline"])
def test_post_mortem_lists_that_are_not_a_list_are_400(api, incident, postmortem, field):
    response = _request(api, "patch", "postmortems", incident, field, {})
    assert response.status_code == 400
    assert errors(response) == [(field, "not_a_list")]


# --- schema honesty -------------------------------------------------------------------


def test_empty_tracker_url_is_sent_as_null_and_documented_so(api, incident):
    bare = remediation_services.action_item_create(
        incident=incident,
        title="Add a pool alarm",
        category="technical",
        source=Source.ADMIN,
    )
    linked = remediation_services.action_item_create(
        incident=incident,
        title="Raise the pool size",
        category="technical",
        tracker_url="https://tracker.example.com/OPS-1",
        source=Source.ADMIN,
    )
    assert api.get(f"{ACTION_ITEMS}{bare.pk}/").json()["tracker_url"] is None
    assert (
        api.get(f"{ACTION_ITEMS}{linked.pk}/").json()["tracker_url"]
        == "https://tracker.example.com/OPS-1"
    )
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    documented = schema["components"]["schemas"]["ActionItem"]["properties"]["tracker_url"]
    assert documented == {"type": "string", "format": "uri", "readOnly": True, "nullable": True}


PAGED = [INCIDENTS, POSTMORTEMS, ACTION_ITEMS, "{incident}timeline/"]


@pytest.mark.parametrize("value", ["null", "0", "-1", "abc", "1.5", "201", "1" * 5000])
@pytest.mark.parametrize("path", PAGED)
def test_page_size_that_is_not_a_number_in_range_is_400_naming_it(api, incident, path, value):
    url = path.format(incident=f"{INCIDENTS}{incident.reference}/")
    if "timeline" in path and value == "201":
        value = "501"
    response = api.get(url, {"page_size": value})
    assert response.status_code == 400
    assert errors(response) == [("page_size", "invalid")]


@pytest.mark.parametrize("path", PAGED)
def test_empty_page_size_is_the_default(api, incident, path):
    url = path.format(incident=f"{INCIDENTS}{incident.reference}/")
    assert api.get(url, {"page_size": ""}).status_code == 200


def test_empty_page_is_the_first_and_empty_date_filter_is_no_bound(api, declare):
    declare(title="One")
    for query in ({"page": ""}, {"declared_after": ""}, {"declared_before": ""}):
        response = api.get(INCIDENTS, query)
        assert response.status_code == 200
        assert response.json()["count"] == 1


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_schema_bounds_page_size_as_the_api_does(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    bounds = {}
    for path, _, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "page_size":
                bounds[path] = (parameter["schema"]["minimum"], parameter["schema"]["maximum"])
    assert bounds == {
        INCIDENTS: (1, 200),
        POSTMORTEMS: (1, 200),
        ACTION_ITEMS: (1, 200),
        "/api/v1/alerts/": (1, 200),
        "/api/v1/alert-rules/": (1, 200),
        "/api/v1/silences/": (1, 200),
        "/api/v1/alert-sources/": (1, 200),
        "/api/v1/oncall/teams/": (1, 200),
        "/api/v1/oncall/rotations/": (1, 200),
        "/api/v1/oncall/overrides/": (1, 200),
        "/api/v1/oncall/contact-methods/": (1, 200),
        "/api/v1/oncall/paging-rules/": (1, 200),
        "/api/v1/pages/": (1, 200),
        "/api/v1/incidents/{reference}/evidence/": (1, 200),
        "/api/v1/evidence/{id}/custody/": (1, 200),
        "/api/v1/incidents/{reference}/timeline/": (1, 500),
    }


def test_schema_gives_the_idempotency_key_its_length(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    keyed = [
        parameter["schema"]
        for _, _, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "Idempotency-Key"
    ]
    assert len(keyed) == 6  # incidents, roles, timeline, updates, post-mortems, action items
    assert all(key == {"type": "string", "minLength": 1, "maxLength": 255} for key in keyed)


@pytest.fixture
def schema(db):
    return APIClient().get("/api/schema/", {"format": "json"}).json()


@pytest.mark.parametrize(
    "action, body, expected",
    [
        ("", {"reviewers": ["alice"]}, ("reviewers", "invalid")),  # the owner
        ("", {"reviewers": ["sam"]}, ("reviewers", "invalid")),  # may not approve
        ("", {"timeline": [{"id": 2**31 - 1, "is_key": True}]}, ("timeline", "invalid")),
        ("", {"owner": "nobody"}, ("owner", "does_not_exist")),
        ("", {"related_incidents": ["INC-2000-0001"]}, ("related_incidents", "does_not_exist")),
        ("", {"related_incidents": ["x" * 300]}, ("related_incidents", "invalid")),
        ("", {"reviewers": [None]}, ("reviewers", "invalid")),
        ("", {"contributing_factors": [{}]}, ("contributing_factors", "invalid")),
        ("", {"contributing_factors": [1]}, ("contributing_factors", "invalid")),
        ("", {"timeline": [{"id": 0}]}, ("timeline", "invalid")),
        ("", {"due_at": "soon"}, ("due_at", "invalid")),
        ("submit", None, ("status", "invalid")),
        ("request-changes", {}, ("comment", "required")),
        ("reopen", {"reason": ""}, ("reason", "blank")),
    ],
)
def test_schema_documents_each_post_mortem_validation_error(
    api, schema, incident, postmortem, django_user_model, action, body, expected
):
    make_user(django_user_model, "sam", "Stakeholders")
    path = "/api/v1/postmortems/{reference}/" + (f"{action}/" if action else "")
    url = path.replace("{reference}", incident.reference)
    method = "post" if action else "patch"
    response = getattr(api, method)(url, body, format="json")
    assert response.status_code == 400, response.content
    returned = set(errors(response))
    assert expected in returned
    assert returned <= documented_validation_errors(schema, path, method)


def test_schema_documents_a_submit_without_owner(api, schema, incident, postmortem):
    postmortem_services.postmortem_update(
        postmortem=postmortem,
        owner=None,
        root_cause="Pool too small.",
        source=Source.ADMIN,
    )
    path = "/api/v1/postmortems/{reference}/submit/"
    response = api.post(path.replace("{reference}", incident.reference))
    assert response.status_code == 400
    assert set(errors(response)) <= documented_validation_errors(schema, path, "post")


# --- times out of any sensible window -------------------------------------------------


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "{year_and_a_day_ago}"],
)
@pytest.mark.parametrize("action", ["timeline", "transition"])
def test_back_dating_beyond_a_year_is_400_naming_occurred_at(api, incident, action, occurred_at):
    when = (timezone.now() - timedelta(days=366)).isoformat()
    body = {"summary": "Rolled back", "status": "resolved"}
    body["occurred_at"] = occurred_at.format(year_and_a_day_ago=when)
    events = TimelineEvent.objects.count()
    response = api.post(f"{INCIDENTS}{incident.reference}/{action}/", body, format="json")
    assert response.status_code == 400
    assert errors(response) == [("occurred_at", "invalid")]
    assert "more than 365 days ago" in only_error(response)["detail"]
    assert TimelineEvent.objects.count() == events


def test_back_dating_within_a_year_is_accepted(api, declare):
    started = timezone.now() - timedelta(days=300)
    incident = declare(declared_at=started)
    when = (started + timedelta(hours=1)).isoformat()
    response = api.post(
        f"{INCIDENTS}{incident.reference}/timeline/",
        {"summary": "Paged the database team", "occurred_at": when},
        format="json",
    )
    assert response.status_code == 201


@pytest.mark.parametrize("next_update_at", ["9999-12-31T23:59:59Z", "{eight_days_ahead}"])
def test_next_update_promised_beyond_a_week_is_400_naming_it(api, incident, next_update_at):
    body = {
        "audience": "internal",
        "summary": "Still investigating.",
        "next_update_at": next_update_at.format(
            eight_days_ahead=(timezone.now() + timedelta(days=8)).isoformat()
        ),
    }
    response = api.post(f"{INCIDENTS}{incident.reference}/updates/", body, format="json")
    assert response.status_code == 400
    assert errors(response) == [("next_update_at", "invalid")]
    assert "within 7 days" in only_error(response)["detail"]
    assert not StatusUpdate.objects.exists()


def test_next_update_may_be_as_far_as_a_longer_cadence(api, declare, sev1):
    Severity.objects.filter(pk=sev1.pk).update(update_every=timedelta(days=14))
    incident = declare()
    body = {
        "audience": "internal",
        "summary": "Waiting on the vendor.",
        "next_update_at": (timezone.now() + timedelta(days=13)).isoformat(),
    }
    response = api.post(f"{INCIDENTS}{incident.reference}/updates/", body, format="json")
    assert response.status_code == 201


def test_next_update_within_a_week_is_accepted(api, incident):
    when = timezone.now() + timedelta(days=6)
    body = {"audience": "internal", "summary": "Monitoring.", "next_update_at": when.isoformat()}
    response = api.post(f"{INCIDENTS}{incident.reference}/updates/", body, format="json")
    assert response.status_code == 201
