"""Shared fixtures: the default policy rows, personas and small builders."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from incidents import services
from incidents.defaults import load_communication_defaults, load_defaults
from incidents.models import IncidentType, Service, Severity, Source


def _flushes_the_database(item) -> bool:
    marker = item.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction"))
    fixtures = getattr(item, "fixturenames", ())
    return transactional or "live_server" in fixtures or "transactional_db" in fixtures


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    # pytest-django runs the tests that flush the database (transaction=True,
    # live_server) after the others, as Django does; pytest's own regrouping by
    # parametrized session fixtures (Playwright's browser) then moves them back between
    # other tests, which would find the data migrations' rows gone. Last again, in order.
    items.sort(key=_flushes_the_database)


@pytest.fixture
def default_policy(db):
    # The data migrations load these, but tests with transaction=True flush them away
    # (and with the suite run in parallel, any test may come after such a flush).
    load_defaults(Severity, IncidentType)
    load_communication_defaults(apps)


@pytest.fixture
def sev1(default_policy):
    return Severity.objects.get(key="SEV1")


@pytest.fixture
def sev2(default_policy):
    return Severity.objects.get(key="SEV2")


@pytest.fixture
def outage(default_policy):
    return IncidentType.objects.get(slug="outage")


@pytest.fixture
def security_type(default_policy):
    return IncidentType.objects.get(slug="security")


@pytest.fixture
def api_service(db):
    return Service.objects.create(name="Public API", slug="api", owning_team="Platform", tier=1)


def make_user(django_user_model, username, *groups, **extra):
    user = django_user_model.objects.create_user(
        username=username, password="pw-" + username, email=f"{username}@example.com", **extra
    )
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


@pytest.fixture
def commander(db, django_user_model):
    """A staff member in the Incident commanders group."""
    return make_user(django_user_model, "alice", "Incident commanders", is_staff=True)


@pytest.fixture
def responder(db, django_user_model):
    return make_user(django_user_model, "bob", "Responders", is_staff=True)


@pytest.fixture
def security_member(db, django_user_model):
    return make_user(django_user_model, "carol", "Security", is_staff=True)


@pytest.fixture
def outsider(db, django_user_model):
    """Staff with incident permissions but no part in any incident."""
    return make_user(django_user_model, "mallory", "Responders", is_staff=True)


@pytest.fixture
def commander_client(client, commander):
    client.force_login(commander)
    return client


@pytest.fixture
def declare(sev1, outage, commander):
    """Declare an incident through the service, with sensible defaults."""

    def _declare(**overrides):
        fields = {
            "title": "Checkout returns 502",
            "severity": sev1,
            "incident_type": outage,
            "actor": commander,
            "source": Source.ADMIN,
        }
        fields.update(overrides)
        return services.incident_declare(**fields)

    return _declare


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache (throttle counters, the business calendar)."""
    from django.core.cache import cache

    from incidents.models import BusinessCalendar

    cache.clear()
    BusinessCalendar.forget()  # and the copy each process keeps a few seconds
    yield
    cache.clear()
    BusinessCalendar.forget()


@pytest.fixture
def without_activation():
    """Run the test with every app's guards and subscribers but on-call's team
    activation: a test that lists an incident's whole timeline then sees no paging
    (with no rota, declaring says on the timeline that it paged nobody)."""
    from incidents import extensions
    from oncall.services.activation import activate_on_declared, activate_on_severity

    kept = [
        fn
        for registry in extensions.Registry._all
        for fn in registry
        if fn not in (activate_on_declared, activate_on_severity)
    ]
    with extensions.only(*kept):
        yield


@pytest.fixture
def without_playbooks():
    """Run the test with every app but playbooks: declaring starts no checklist and
    closing needs none (another app's story, told event by event, or a SEV1 closed)."""
    from incidents import extensions
    from playbooks import services as playbooks

    left_out = {
        playbooks.start_on_declaration,
        playbooks.start_on_severity_change,
        playbooks.require_steps_before_close,
        playbooks.review_gaps,
    }
    kept = [fn for registry in extensions.Registry._all for fn in registry if fn not in left_out]
    providers = [slot._provider for slot in extensions.Slot._all if slot.taken_over]
    with extensions.only(*kept, *providers):
        yield


@pytest.fixture
def core_only():
    """Run the test with the core alone: no other app's guards or event subscribers
    (closing a SEV1 needs no published review). Registrations come back afterwards."""
    from incidents import extensions

    with extensions.isolated():
        yield
