"""Page watchdog rounds racing each other, and an acknowledgement racing a round, on a
real PostgreSQL server: each step is sent once, a page answered while a round waits for
it is not sent again, and the two never deadlock (both lock the incident first, then its
pages in pk order)."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from incidents.models import Notification, Source
from oncall.models import Page
from oncall.services import paging
from tests.incidents.test_watchdog_races import race, waiting_for_a_lock

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real concurrency"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def paged(declare, make_person, make_method, make_rule, page_by_hand):
    """Three incidents, each paging three people by email every 10 minutes, 3 times."""
    people = [make_person(f"p{n}") for n in range(3)]
    for person in people:
        make_rule(make_method(person), repeat_every=10, repeat_times=3)
    incidents = [declare(title=f"Storm {n}") for n in range(3)]
    for incident in incidents:
        page_by_hand(incident, *people)
    return incidents


def test_racing_rounds_send_each_step_once(paged):
    later = timezone.now() + timedelta(hours=1)  # every repeat is due by then

    sent = race(4, lambda: paging.pages_advance(now=later))

    assert sum(sent) == 3 * 3 * 3  # incidents × people × repeats after the first
    steps = Counter(Notification.objects.filter(event="page").values_list("dedup_key", flat=True))
    assert len(steps) == 3 * 3 * 4 and set(steps.values()) == {1}
    assert not Page.objects.filter(next_step_at__isnull=False).exists()


def test_a_page_acknowledged_while_a_round_waits_for_it_is_not_sent_again(paged):
    page = Page.objects.filter(incident=paged[0]).order_by("pk").first()
    acknowledging, release = threading.Event(), threading.Event()

    def acknowledge_slowly():
        try:
            with transaction.atomic():
                paging.page_acknowledge(page=page, actor=page.user, via="link", source=Source.API)
                acknowledging.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    sent = []

    def advance():
        try:
            sent.append(paging.pages_advance(now=timezone.now() + timedelta(hours=1)))
        finally:
            connection.close()

    acknowledger = threading.Thread(target=acknowledge_slowly)
    acknowledger.start()
    assert acknowledging.wait(timeout=30)
    watchdog = threading.Thread(target=advance)
    watchdog.start()
    deadline = time.monotonic() + 30
    while not waiting_for_a_lock():
        assert time.monotonic() < deadline, "the round never waited for the page"
        time.sleep(0.01)
    release.set()
    acknowledger.join(timeout=30)
    watchdog.join(timeout=30)

    # The answered page kept its first step only; every other page got its repeats.
    assert (
        Notification.objects.filter(event="page", recipient=page.user, incident=paged[0]).count()
        == 1
    )
    assert sent == [3 * 3 * 3 - 3]


def test_acknowledging_and_a_round_at_once_both_finish(paged):
    pages = list(Page.objects.filter(incident=paged[1]).order_by("-pk"))
    later = timezone.now() + timedelta(hours=1)
    turn = iter(range(4))
    lock = threading.Lock()

    def work():
        with lock:
            mine = next(turn)
        if mine < 2:
            return paging.pages_advance(now=later)
        page = pages[mine - 2]
        return paging.page_acknowledge(page=page, actor=page.user, via="link", source=Source.API)

    results = race(4, work)  # a deadlock would raise in one of them

    assert len(results) == 4
    assert (
        Page.objects.filter(pk__in=[p.pk for p in pages[:2]], acknowledged_at__isnull=False).count()
        == 2
    )
