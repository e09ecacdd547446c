"""The groups and their permissions, and the system check that keeps the locker out of
what a web server serves."""

import pytest
from django.contrib.auth.models import Group
from django.core.checks import run_checks

from forensics.checks import check_evidence_root

pytestmark = pytest.mark.django_db


def codenames(group_name):
    return set(
        Group.objects.get(name=group_name)
        .permissions.filter(content_type__app_label="forensics")
        .values_list("codename", flat=True)
    )


def test_responders_add_evidence_and_assess_breaches(db):
    assert codenames("Responders") == {
        "view_evidenceitem",
        "add_evidenceitem",
        "view_custodyrecord",
        "view_breachassessment",
        "add_breachassessment",
        "change_breachassessment",
    }


def test_the_legal_group_exists_and_records_notifications(settings):
    assert codenames(settings.BREACH_LEGAL_GROUP) == {
        "view_evidenceitem",
        "view_custodyrecord",
        "view_breachassessment",
        "add_breachassessment",
        "change_breachassessment",
    }


def test_stakeholders_get_nothing_of_it(db):
    assert codenames("Stakeholders") == set()


def test_a_locker_inside_static_root_is_an_error(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.EVIDENCE_ROOT = tmp_path / "static" / "evidence"

    (error,) = check_evidence_root(None)
    assert error.id == "forensics.E001"
    assert "STATIC_ROOT" in error.msg


def test_a_locker_of_its_own_passes_the_check(settings):
    assert not [error for error in run_checks() if error.id == "forensics.E001"]


def test_running_ready_again_registers_nothing_twice():
    from django.apps import apps

    from incidents import extensions

    with extensions.restored():
        before = {
            name: list(getattr(extensions, name))
            for name in ("declared", "confidentiality_changed", "review_drafting")
        }
        apps.get_app_config("forensics").ready()
        apps.get_app_config("forensics").ready()
        assert {name: list(getattr(extensions, name)) for name in before} == before
