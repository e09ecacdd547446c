"""The dashboard's monitoring panel: firing alerts no incident holds, quiet sources."""

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertSource

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


def attention(client) -> str:
    page = client.get(INDEX).content.decode()
    start = page.index('id="dash-attention"')
    return page[start : page.index("</section>", start)]


def _alert(source, title, **fields):
    now = timezone.now()
    return Alert.objects.create(
        source=source, fingerprint=title, title=title, starts_at=now, **fields
    )


@pytest.fixture
def source(make_source):
    made = make_source()
    return made[0] if isinstance(made, tuple) else made


def test_a_firing_alert_in_no_incident_shows(commander_client, source, declare):
    _alert(source, "DiskAlmostFull")
    _alert(source, "Handled", incident=declare())
    _alert(source, "Gone", status=Alert.Status.RESOLVED)
    section = attention(commander_client)
    assert "Monitoring" in section and "1 firing alert in no incident" in section
    assert "DiskAlmostFull" in section and "Handled" not in section and "Gone" not in section


def test_a_quiet_source_shows(commander_client, source):
    AlertSource.objects.filter(pk=source.pk).update(heartbeat_minutes=5, quiet_since=timezone.now())
    section = attention(commander_client)
    assert "Sources gone quiet" in section and source.name in section


def test_nothing_to_say_shows_no_panel(commander_client, source):
    assert "Monitoring" not in attention(commander_client)
