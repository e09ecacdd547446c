"""Fixtures of the oncall tests: teams, rotations and overrides built through the
services, and people to put in them."""

from datetime import date, time

import pytest
from django.apps import apps

from incidents.models import Source
from oncall.defaults import load_defaults
from oncall.models import OnCallRole, Rotation
from oncall.services.schedules import override_create, rotation_create, team_create
from tests.conftest import make_user


@pytest.fixture(autouse=True)
def oncall_defaults(default_policy):
    """The activation and stuck rules and the default policy the migration loads (a
    test that flushed the database took them along)."""
    load_defaults(apps)


@pytest.fixture
def make_person(db, django_user_model):
    """Create a plain user (no group) named `username`."""

    def _make(username, *groups, **extra):
        return make_user(django_user_model, username, *groups, **extra)

    return _make


@pytest.fixture
def make_team(db):
    """Create a team through the service."""

    def _make(name="Platform", *, members=(), **fields):
        return team_create(name=name, members=members, actor=None, source=Source.SYSTEM, **fields)

    return _make


@pytest.fixture
def make_rotation(db):
    """Create a rotation through the service: `members` in order; weekly from Monday
    5 January 2026 at 09:00 UTC unless told otherwise."""

    def _make(team, role=OnCallRole.RESPONDER, members=(), **fields):
        fields.setdefault("name", f"{team.name} {role} {fields.get('layer', 1)}")
        fields.setdefault("starts_on", date(2026, 1, 5))
        fields.setdefault("handoff_time", time(9, 0))
        fields.setdefault("period", Rotation.Period.WEEKLY)
        return rotation_create(
            team=team, role=role, members=members, actor=None, source=Source.SYSTEM, **fields
        )

    return _make


@pytest.fixture
def make_override(db):
    """Create an override through the service."""

    def _make(rotation, user, starts_at, ends_at, *, covers=None, reason=""):
        return override_create(
            rotation=rotation,
            user=user,
            starts_at=starts_at,
            ends_at=ends_at,
            covers=covers,
            reason=reason,
            actor=None,
            source=Source.SYSTEM,
        )

    return _make


# --- H3: escalation policies (test_escalation, test_provider, test_checks, the admin, the API)


@pytest.fixture
def make_policy(db):
    """Replace the default escalation policy with one of `levels`: dicts of PolicyLevel
    fields plus optional `users`, `rotations`, `teams`, `targets` lists."""
    from oncall.models import EscalationPolicy, PolicyLevel

    def _make(name="Platform escalation", levels=(), *, is_default=True):
        if is_default:
            EscalationPolicy.objects.filter(is_default=True).update(is_default=False)
        policy = EscalationPolicy.objects.create(name=name, is_default=is_default)
        for number, fields in enumerate(levels, start=1):
            fields = dict(fields)
            relations = {
                key: fields.pop(key, []) for key in ("users", "rotations", "teams", "targets")
            }
            fields.setdefault("name", f"Level {number}")
            level = PolicyLevel.objects.create(policy=policy, number=number, **fields)
            for key, values in relations.items():
                getattr(level, key).set(values)
        return policy

    return _make


# --- contact methods, paging rules and pages (the paging tests) ------------------------


@pytest.fixture
def make_method(db):
    """Create a contact method through the service, verified by following its link
    unless `verified=False`; the address defaults to one of the owner's."""
    from oncall.services.contacts import contact_method_create, contact_method_verify, verify_token

    def _make(user, kind="email", address=None, *, verified=True, label=""):
        method = contact_method_create(
            user=user,
            kind=kind,
            address=address or f"{user.username}+pager@example.com",
            label=label,
            actor=user,
            source=Source.API,
        )
        if verified:
            method = contact_method_verify(token=verify_token(method), source=Source.API)
        return method

    return _make


@pytest.fixture
def make_rule(db):
    """Add a paging rule to a method's owner: delay and repeat_every in minutes."""
    from datetime import timedelta

    from oncall.models import Urgency
    from oncall.services.contacts import paging_rule_save

    def _make(method, *, urgency=Urgency.HIGH, delay=0, repeat_every=None, repeat_times=0):
        return paging_rule_save(
            user=method.user,
            urgency=urgency,
            contact_method=method,
            delay=timedelta(minutes=delay),
            repeat_every=timedelta(minutes=repeat_every) if repeat_every else None,
            repeat_times=repeat_times,
            actor=method.user,
            source=Source.API,
        )

    return _make


@pytest.fixture
def page_by_hand(db):
    """Page `users` about `incident` by hand (paging.page_people); return what it did."""
    from django.db import transaction

    from oncall.models import Page
    from oncall.services.paging import page_people

    def _page(incident, *users, why="by hand", now=None, reason=Page.Reason.MANUAL):
        with transaction.atomic():
            return page_people(
                incident=incident,
                users=users,
                reason=reason,
                why=why,
                source=Source.API,
                now=now,
            )

    return _page
