"""Fixtures of the forensics tests: a locker of each test's own, incidents of the kinds
that start a breach clock, files to upload, and the people told of deadlines."""

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from forensics import services
from incidents.models import IncidentType, Source
from tests.conftest import make_user


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    """Each test's evidence in a folder of its own (the storage follows the setting)."""
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    return settings.EVIDENCE_ROOT


@pytest.fixture
def data_type(default_policy):
    return IncidentType.objects.get(slug="data")


@pytest.fixture
def breach(declare, security_type, commander):
    """A confidential security incident, commanded by alice (its clock is running)."""
    return declare(title="Customer table dumped", incident_type=security_type, commander=commander)


@pytest.fixture
def legal(db, django_user_model, settings):
    """A member of the legal and compliance group (created after migrate)."""
    Group.objects.get_or_create(name=settings.BREACH_LEGAL_GROUP)
    return make_user(django_user_model, "lena", settings.BREACH_LEGAL_GROUP, is_staff=True)


def uploaded(content: bytes = b"Jan 01 sshd[1]: Accepted password for root\n", name="auth.log"):
    return SimpleUploadedFile(name, content, content_type="text/plain")


@pytest.fixture
def upload(commander):
    """Upload evidence to an incident through the service (as alice by default)."""

    def _upload(incident, content: bytes = b"log line\n", name="auth.log", **fields):
        fields = {
            "kind": "system_logs",
            "description": "auth.log from the bastion",
            "actor": commander,
            "source": Source.ADMIN,
            "address": "203.0.113.7",
            **fields,
        }
        return services.evidence_upload(incident=incident, file=uploaded(content, name), **fields)

    return _upload
