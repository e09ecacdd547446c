"""How long the outbox takes to recover what a killed worker held, and what it costs.

Writes BENCH_NOTIFICATIONS webhook notifications (default 200) to a receiver on
127.0.0.1 that takes BENCH_RECEIVER_DELAY seconds (default 0.2) per request, starts a
real `manage.py qcluster`, kills its whole process group with SIGKILL BENCH_KILLS times
(default 2) while deliveries are under way, starting a new cluster each time, and waits
for every row to be delivered. Prints how many were delivered, how many requests the
receiver saw twice (same Idempotency-Key), and, for the rows a dead worker left in
'sending', how long after the kill they were delivered.

Run: make bench-outbox                (SQLite file in a temporary folder)
     DATABASE_URL=postgres://postgres@127.0.0.1:5432/sitrep_bench make bench-outbox
The PostgreSQL database named there is dropped and created anew.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
NOTIFICATIONS = int(os.environ.get("BENCH_NOTIFICATIONS", "200"))
DELAY = float(os.environ.get("BENCH_RECEIVER_DELAY", "0.2"))
KILLS = int(os.environ.get("BENCH_KILLS", "2"))
# Each wait is bounded: the run stops by itself even if delivery stalls.
GIVE_UP_AFTER = 600


def environment() -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "Q_WORKERS": "2"}
    env.setdefault("SECRET_KEY", "bench-outbox-" + "x" * 40)
    env.setdefault("LOG_LEVEL", "WARNING")  # not a line per queued task
    if not env.get("DATABASE_URL"):
        env["SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "outbox.sqlite3")
    return env


ENV = environment()
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from incidents import notifications  # noqa: E402
from incidents.models import (  # noqa: E402
    ChannelKind,
    ChannelTarget,
    IncidentType,
    Notification,
    Severity,
    Source,
)


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.keys: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(DELAY)
        with self.server.lock:
            self.server.keys.append(self.headers.get("Idempotency-Key"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def manage(*args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=ENV, check=True)


def fresh_database():
    if connection.vendor == "postgresql":
        name = urlsplit(ENV["DATABASE_URL"]).path.lstrip("/")
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
    manage("migrate", "--no-input", "--verbosity", "0")


def start_cluster() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its sentinel, pusher and workers share one group
    )


def kill(cluster: subprocess.Popen) -> None:
    try:
        os.killpg(cluster.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    cluster.wait(timeout=30)


def delivered() -> int:
    return Notification.objects.filter(state=Notification.State.DELIVERED).count()


def wait_until(condition, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > GIVE_UP_AFTER:
            raise SystemExit(f"gave up after {GIVE_UP_AFTER} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def main():
    fresh_database()
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    targets = [
        ChannelTarget.objects.create(
            name=f"receiver {n}", kind=ChannelKind.WEBHOOK, address=f"{url}/{n}", secret="s"
        )
        for n in range(NOTIFICATIONS)
    ]
    from incidents import services

    incident = services.incident_declare(
        title="Outbox recovery bench",
        severity=Severity.objects.get(key="SEV3"),
        incident_type=IncidentType.objects.get(slug="outage"),
        source=Source.SYSTEM,
    )
    with transaction.atomic():
        rows = notifications.notify(
            incident, Notification.Event.STATUS_UPDATE, targets=targets, message="bench"
        )
    assert len(rows) == NOTIFICATIONS, len(rows)

    started = time.monotonic()
    cluster = start_cluster()
    recoveries = []
    for number in range(1, KILLS + 1):
        # Kill while deliveries are under way: after a share of them went through.
        goal = NOTIFICATIONS * number // (KILLS + 2)
        wait_until(lambda goal=goal: delivered() >= goal, f"{goal} deliveries")
        held = set(
            Notification.objects.filter(state=Notification.State.SENDING).values_list(
                "pk", flat=True
            )
        )
        kill(cluster)
        killed_at = time.time()  # wall clock, as the rows' delivered_at
        cluster = start_cluster()
        recoveries.append((killed_at, held))
    wait_until(lambda: delivered() == NOTIFICATIONS, "every delivery")
    finished = time.monotonic()
    kill(cluster)

    rows = {row.pk: row for row in Notification.objects.all()}
    print(f"| notifications | {NOTIFICATIONS} (receiver {DELAY:.2f} s a request) |")
    print(f"| cluster killed (SIGKILL, whole group) | {KILLS} times |")
    print(f"| delivered | {delivered()} of {NOTIFICATIONS} |")
    duplicates = sum(count - 1 for count in Counter(receiver.keys).values() if count > 1)
    print(f"| requests seen twice (same Idempotency-Key) | {duplicates} |")
    for number, (killed_at, held) in enumerate(recoveries, 1):
        if not held:
            print(f"| kill {number}: rows left 'sending' | 0 |")
            continue
        waited = max(rows[pk].delivered_at for pk in held).timestamp() - killed_at
        print(
            f"| kill {number}: rows left 'sending', delivered within | {len(held)} rows, "
            f"{waited:.0f} s of the kill |"
        )
    print(f"| all delivered after | {finished - started:.0f} s |")
    receiver.shutdown()


if __name__ == "__main__":
    main()
