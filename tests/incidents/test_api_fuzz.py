"""Schema-driven fuzzing: whatever a client sends, the API answers as its schema says.

Schemathesis reads /api/schema/ from the WSGI application and, for every operation,
sends generated requests (valid and invalid) with a commander's API key. Each
response must not be a 5xx and must match the documented status codes, content
type and body schema.

A second test runs the stateful phase: scenarios of up to 8 calls along the links
schemathesis infers from the schema (declare an incident, then acknowledge it, add to
its timeline, assign roles…), with the same checks at every step.

The schema is loaded at import time: `schemathesis.pytest.from_fixture` (the lazy
loader) reads `request.node._nodeid`, which pytest 9 no longer has.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from incidents import services
from incidents.api.throttling import APIKeyRateThrottle
from incidents.models import Role, Source, Status

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())

# References of the incidents the `references` fixture declares; the hook below reads
# them while Hypothesis generates examples, inside the test.
REAL_REFERENCES: list[str] = []


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Aim most detail requests at incidents that exist; keep the generated one too."""
    if not path_parameters or "reference" not in path_parameters or not REAL_REFERENCES:
        return st.just(path_parameters)
    real = [{**path_parameters, "reference": reference} for reference in REAL_REFERENCES]
    return st.sampled_from([*real, path_parameters])


# Drawn at random, times and people nearly always contradict each other or the records.
NOT_DRAWN = {"started_at", "detected_at", "commander", "owner", "postmortem"}


def _undrawn(body: dict) -> dict:
    return {key: value for key, value in body.items() if key not in NOT_DRAWN}


# Bodies that name records which exist, so writes succeed (and stateful scenarios go on
# from what they created) as well as fail; keyed by operation.
REAL_BODIES = {
    "POST /api/v1/incidents/": lambda body: {
        **_undrawn(body),
        "severity": "SEV3",
        "type": "outage",
        "services": ["api"],
    },
    "POST /api/v1/incidents/{reference}/severity/": lambda body: {**body, "severity": "SEV2"},
    "POST /api/v1/incidents/{reference}/roles/": lambda body: {**body, "user": "bob"},
    "POST /api/v1/action-items/": lambda body: {**_undrawn(body), "incident": REAL_REFERENCES[0]},
}


@schema.hook
def flatmap_body(context, body):
    """Half the bodies of these writes name real records; the rest stay as generated."""
    real = REAL_BODIES.get(context.operation.label)
    if real is None or not isinstance(body, dict) or not REAL_REFERENCES:
        return st.just(body)
    return st.sampled_from([real(body), body])


@pytest.fixture
def in_test_transaction(db, monkeypatch):
    # A WSGI server closes the database connection after each request; here every
    # request must run inside the test's transaction, as Django's test client arranges.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # Hundreds of requests in a few seconds would otherwise hit the per-key limit.
    monkeypatch.setattr(APIKeyRateThrottle, "THROTTLE_RATES", {"api": None})
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def references(declare, security_type, commander, responder, api_service):
    """Incidents in several states, one of them hidden from the fuzzing commander."""
    plain = declare(title="Checkout returns 502", services=[api_service], commander=commander)
    mine = declare(title="Token leaked", incident_type=security_type)
    # Confidential and declared by someone else: the commander's key gets 404s for it.
    hidden = declare(title="Badge cloned", incident_type=security_type, actor=responder)
    resolved = declare(title="Old outage")
    services.role_assign(
        incident=resolved, role=Role.COMMANDER, user=responder, source=Source.ADMIN
    )
    services.incident_transition(incident=resolved, to_status=Status.RESOLVED, source=Source.ADMIN)
    REAL_REFERENCES[:] = [incident.reference for incident in (plain, mine, hidden, resolved)]
    yield
    REAL_REFERENCES.clear()


@pytest.fixture
def bearer(commander):
    _, plaintext = services.api_key_create(user=commander, name="fuzzer")
    return {"Authorization": f"Bearer {plaintext}"}


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_answers_as_its_schema_says(case, in_test_transaction, references, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)


# --- stateful: chains of calls that feed each other -----------------------------------

# Links inferred from the schema (a created incident's reference feeds its detail, roles,
# timeline… operations); Hypothesis then runs short scenarios along them.
Workflows = schema.as_state_machine()


def test_api_workflows_answer_as_its_schema_says(in_test_transaction, references, bearer):
    class AsCommander(Workflows):
        # Each scenario starts from the fixtures' records: Hypothesis replays a failing
        # one to shrink it, which only works if the replay meets the same data.
        def setup(self):
            self.scenario = transaction.atomic()
            self.scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": bearer}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    AsCommander.run(
        settings=settings(
            max_examples=100,
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
