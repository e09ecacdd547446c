"""The dashboard's remediation panel: my overdue action items."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.models import Source
from remediation import services
from remediation.models import ActionItem

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


def mine_section(client) -> str:
    page = client.get(INDEX).content.decode()
    start = page.index('id="dash-mine"')
    return page[start : page.index("</section>", start)]


@pytest.fixture
def item(declare, commander):
    incident = declare()
    return services.action_item_create(
        title="Add a replica lag alert",
        category=ActionItem.Category.TECHNICAL,
        incident=incident,
        owner=commander,
        actor=commander,
        source=Source.ADMIN,
    )


def test_my_overdue_item_shows_with_how_late_it_is(commander_client, item):
    assert "My overdue action items" not in mine_section(commander_client)
    ActionItem.objects.filter(pk=item.pk).update(due_on=timezone.localdate() - timedelta(days=3))
    section = mine_section(commander_client)
    assert "My overdue action items" in section
    assert "Add a replica lag alert" in section and "3 days late" in section
    assert reverse("admin:remediation_actionitem_change", args=[item.pk]) in section


def test_someone_elses_or_a_finished_item_does_not_show(client, item, responder):
    ActionItem.objects.filter(pk=item.pk).update(due_on=timezone.localdate() - timedelta(days=3))
    client.force_login(responder)
    assert "My overdue action items" not in mine_section(client)
    ActionItem.objects.filter(pk=item.pk).update(owner=responder, status=ActionItem.Status.WONT_DO)
    assert "My overdue action items" not in mine_section(client)
