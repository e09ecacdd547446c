"""Scale-out delivery: two "hosts" (each one gunicorn and one `manage.py qcluster`) on
one PostgreSQL and one Redis deliver BENCH_NOTIFICATIONS (5,000) webhook notifications to
a receiver on 127.0.0.1, each exactly once.

Run: make bench-delivery
Its own database and Redis: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/sitrep_bench_delivery, dropped and created anew) and
BENCH_REDIS_URL (default redis://127.0.0.1:6379/6, flushed at the start); neither is
DATABASE_URL or REDIS_URL, so a run never wipes the ones you work on. BENCH_TARGETS (10)
webhooks per declaration, BENCH_CLIENTS (8) declaring threads, BENCH_WORKERS (2) gunicorn
workers per server, BENCH_Q_WORKERS (2) workers per cluster, BENCH_RECEIVER_DELAY (0 s a
request), BENCH_GIVE_UP (900 s, the bound on every wait; draining 5,000 on a busy
2-core machine takes several minutes).

What it does:
1. The production shape: DEBUG off, DB_CONN_MAX_AGE=60, REDIS_URL set (django-q2 on the
   Redis broker, the cache and throttle counters in Redis). With Redis the outbox rows
   are queued on commit (notifications.notify_many) and the minute sweeper
   (notifications.sweep) re-queues whatever is pending and due (ECOSYSTEM pitfall 3).
2. Through the product, not by inserting rows: a stakeholder group ticked for SEV4 with
   BENCH_TARGETS webhook channel targets (incidents.ChannelTarget) on the receiver, and an
   API key (`manage.py create_api_key`) of a user in "Incident commanders". Webhook
   targets of the matrix are not checked for private addresses (only the on-call app's
   personal webhooks are, ONCALL_PRIVATE_WEBHOOKS), so 127.0.0.1 needs no setting.
3. Two gunicorn servers (`-c gunicorn.conf.py` when the project has one, with -w and -b
   given here) and two qclusters, all on the same database and Redis. A second process
   declares BENCH_NOTIFICATIONS / BENCH_TARGETS SEV4 incidents with
   `POST /api/v1/incidents/` (an Idempotency-Key each, retried with the same key on a 5xx
   or a broken connection), its threads split between the two servers. API_THROTTLE_RATE
   is raised to 100000/min: one key declaring 500 incidents in seconds is the load here,
   not abuse.
4. A threaded receiver answers 200 at once and records each request's Idempotency-Key,
   the incident reference in the payload, the target (its path), when it came and through
   which port. Each
   cluster's egress goes through its own receiver port (HTTP_PROXY, which httpx honours;
   the receiver answers the proxied request itself), so the receiver knows which
   cluster delivered what.
5. It waits (bounded) until every row is delivered and the Redis queue is empty, then
   counts: deliveries at the receiver against the rows, distinct keys, duplicates (the
   same key twice), rows by state, delivery attempts, and the sweeper's re-queues.
   Exactly once means: every row's key arrived, no key that is not a row's, and each
   (incident, target) pair arrived under one key only (a repeat with the same key is
   the receiver's to drop; a second key would be a second notification).

Prints Markdown for bench/RESULTS.md (with the machine and the date); exits 1 when a
declaration was refused or a notification was not delivered exactly once.
"""

import http.client
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DECLARE_PATH = "/api/v1/incidents/"


# --- the declaring client (a process of its own, no Django) ------------------------------


def declare_load(servers: list[str], key: str, count: int, clients: int) -> dict:
    """Declare `count` incidents from `clients` threads, thread i on servers[i % n], each
    sending as soon as its previous answer came; return every request's outcome."""
    numbers = iter(range(count))
    lock = threading.Lock()
    outcomes = []

    def declare(server: str, number: int) -> tuple:
        parts = urlsplit(server)
        body = json.dumps(
            {
                "title": f"Delivery bench {number}",
                "severity": "low",
                "type": "outage",
                "environment": "production",
                "summary": "Scale-out delivery benchmark",
            }
        ).encode()
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),  # the same on every retry of this one
        }
        began = time.time()
        status, tries = None, 0
        while tries < 5:
            tries += 1
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                connection.request("POST", DECLARE_PATH, body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError as error:
                status = type(error).__name__
            finally:
                connection.close()
            if status == 429:
                time.sleep(float(response.headers.get("Retry-After") or 1))
            elif isinstance(status, int) and status < 500:
                break
            else:
                time.sleep(0.5)
        return servers.index(server), status, began, time.time(), tries

    def run(thread: int) -> None:
        server = servers[thread % len(servers)]
        while True:
            with lock:
                number = next(numbers, None)
            if number is None:
                return
            outcome = declare(server, number)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"outcomes": outcomes}


if __name__ == "__main__" and sys.argv[1:2] == ["client"]:
    servers, key, count, clients = sys.argv[2].split(","), sys.argv[3], *sys.argv[4:6]
    print(json.dumps(declare_load(servers, key, int(count), int(clients))))
    raise SystemExit(0)


# --- the bench ----------------------------------------------------------------------------

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sitrep_bench_delivery"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
NOTIFICATIONS = int(os.environ.get("BENCH_NOTIFICATIONS", "5000"))
TARGETS = int(os.environ.get("BENCH_TARGETS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
Q_WORKERS = int(os.environ.get("BENCH_Q_WORKERS", "2"))
DELAY = float(os.environ.get("BENCH_RECEIVER_DELAY", "0"))
GIVE_UP_AFTER = float(os.environ.get("BENCH_GIVE_UP", "900"))
HOSTS = 2
GUNICORN_CONF = ROOT / "gunicorn.conf.py"

if NOTIFICATIONS % TARGETS:
    raise SystemExit(
        f"BENCH_NOTIFICATIONS={NOTIFICATIONS} is not a multiple of BENCH_TARGETS={TARGETS} "
        "(each declaration writes one notification per target)"
    )
if urlsplit(DATABASE_URL).scheme not in ("postgres", "postgresql"):
    raise SystemExit("bench/delivery.py measures PostgreSQL: BENCH_DATABASE_URL=postgres://…")


def environment() -> dict:
    # No proxy of the caller's: each cluster gets the receiver's port as its own below.
    env = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DEBUG="false",
        DB_CONN_MAX_AGE="60",
        Q_WORKERS=str(Q_WORKERS),
        API_THROTTLE_RATE="100000/min",
        LOG_LEVEL="WARNING",  # not a line per queued task
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        # WhiteNoise's note that collectstatic has not run: the bench serves no static files.
        PYTHONWARNINGS="ignore:No directory at:UserWarning",
    )
    env.setdefault("SECRET_KEY", "bench-delivery-" + "x" * 40)  # also signs the tasks
    return env


ENV = environment()
for _name in [name for name in os.environ if name.lower().endswith("_proxy")]:
    del os.environ[_name]
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Max, Min, Q  # noqa: E402
from django_q.brokers import get_broker  # noqa: E402
from django_q.conf import Conf  # noqa: E402
from django_q.models import Task  # noqa: E402
from django_q.status import Stat  # noqa: E402

from incidents.models import (  # noqa: E402
    ChannelKind,
    ChannelTarget,
    DeliveryAttempt,
    Notification,
    Severity,
    StakeholderGroup,
)

SWEEP = "incidents.tasks.sweep_notifications"
DELIVER = "incidents.tasks.deliver_notification"
LOGS = Path(os.environ.get("TMPDIR", "/tmp")) / f"sitrep-bench-delivery-{os.getpid()}"


class Receiver(ThreadingHTTPServer):
    """One listening port of the receiver; every port records into the same `log`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, log: list, lock: threading.Lock):
        self.log, self.lock = log, lock
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        arrived_at = time.time()
        if DELAY:
            time.sleep(DELAY)
        try:
            reference = json.loads(body)["incident"]["reference"]
        except (ValueError, KeyError, TypeError):
            reference = None
        target = urlsplit(self.path).path  # a proxied request names the whole URL
        with self.server.lock:
            key = self.headers.get("Idempotency-Key")
            self.server.log.append((key, arrived_at, self.server.server_port, reference, target))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def manage(*args) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def fresh_stores() -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    manage("migrate", "--no-input", "--verbosity", "0")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(args: list[str], name: str, env: dict) -> subprocess.Popen:
    log = open(LOGS / f"{name}.log", "wb")  # the child holds it open
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a server's (or cluster's) processes share one group
    )


def start_gunicorn(number: int, port: int) -> subprocess.Popen:
    config = ["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    args = [gunicorn, "config.wsgi", *config, "-w", str(WORKERS), "-b", f"127.0.0.1:{port}"]
    return start(args, f"gunicorn-{number}", ENV)


def start_cluster(number: int, proxy_port: int) -> subprocess.Popen:
    proxy = f"http://127.0.0.1:{proxy_port}"
    env = {**ENV, "HTTP_PROXY": proxy, "http_proxy": proxy}
    return start([sys.executable, "manage.py", "qcluster"], f"qcluster-{number}", env)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the leader (gunicorn's master and qcluster each stop their own children
    gracefully on it; signalling the whole group would cut workers off mid-request), then
    SIGKILL whatever of its group is left, after 30 s at most."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # the group is gone already
        pass
    process.wait(timeout=30)


def log_tail(name: str, lines: int = 15) -> str:
    text = (LOGS / f"{name}.log").read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_until(condition, what: str, processes=()) -> float:
    """Poll `condition` until true; give up after GIVE_UP_AFTER, or when a process died."""
    started = time.monotonic()
    while not condition():
        for name, process in processes:
            if process.poll() is not None:
                raise SystemExit(
                    f"{name} exited ({process.returncode}) while waiting for {what}; "
                    f"the end of {LOGS / name}.log:\n{log_tail(name)}"
                )
        if time.monotonic() - started > GIVE_UP_AFTER:
            raise SystemExit(
                f"gave up after {GIVE_UP_AFTER:.0f} s waiting for {what} (logs in {LOGS})"
            )
        time.sleep(0.2)
    return time.monotonic() - started


def answers(url: str, key: str) -> bool:
    parts = urlsplit(url)
    server = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        server.request("GET", "/api/v1/severities/", headers={"Authorization": f"Bearer {key}"})
        return server.getresponse().status == 200
    except OSError:
        return False
    finally:
        server.close()


def clusters_ready(clusters: list[subprocess.Popen]) -> bool:
    ready = {
        stat.pid
        for stat in Stat.get_all()
        if stat.status in (Conf.IDLE, Conf.WORKING) and len(stat.workers) == Q_WORKERS
    }
    return all(cluster.pid in ready for cluster in clusters)


def setup(receiver_url: str) -> str:
    """The matrix row, its webhooks and the API key; return the key."""
    targets = [
        ChannelTarget.objects.create(
            name=f"Delivery bench receiver {n}",
            kind=ChannelKind.WEBHOOK,
            address=f"{receiver_url}/hook/{n}",
            secret="bench-signing-secret",
        )
        for n in range(TARGETS)
    ]
    group = StakeholderGroup.objects.create(slug="delivery-bench", name="Delivery bench")
    group.severities.set([Severity.objects.get(key="SEV4")])
    group.targets.set(targets)
    user = User.objects.create_user("delivery-bot", email="")
    user.groups.add(Group.objects.get(name="Incident commanders"))
    return manage("create_api_key", "delivery-bot", "--name", "delivery bench").splitlines()[-1]


class Watch:
    """What the database and broker say while the run goes on (sampled)."""

    def __init__(self):
        self.broker = get_broker()
        self.max_backlog = 0
        self.max_queue = 0
        self.sweeps: dict[str, tuple] = {}

    def sample(self) -> dict:
        states = dict(Notification.objects.values_list("state").annotate(n=Count("pk")).order_by())
        backlog = states.get("pending", 0) + states.get("sending", 0)
        self.max_backlog = max(self.max_backlog, backlog)
        self.max_queue = max(self.max_queue, self.broker.queue_size())
        # django-q keeps the last 1,000 results only (save_limit): read them as they come.
        for pk, started, result in Task.objects.filter(func=SWEEP).values_list(
            "id", "started", "result"
        ):
            self.sweeps[pk] = (started, result)
        return states


TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_group() -> dict[str, float]:
    """CPU seconds so far of every process, by the process group or program it is. A
    group's figure includes its reaped children (cutime + cstime): django-q replaces a
    worker after 500 tasks (recycle), and the sentinel reaps it."""
    seen = defaultdict(float)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        reaped = (int(fields[13]) + int(fields[14])) / TICK  # cutime + cstime
        seen[f"group:{fields[2]}"] += seconds + reaped
        name = urlsplit(DATABASE_URL).path.lstrip("/")
        # Our database's backends and the server's own processes, not others' backends.
        if command.startswith("postgres") and (f" {name} " in command or "(" not in command):
            seen["postgres"] += seconds
        elif command.startswith("redis-server"):
            seen["redis"] += seconds
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the client, once it exited
    seen["bench"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return seen


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    values = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        sync = cursor.fetchone()[0]
    info = redis.Redis.from_url(REDIS_URL).info("server")
    return (
        f"{os.cpu_count()} cores ({cpu}), {kib / 1024 / 1024:.0f} GiB RAM, "
        f"PostgreSQL {server} (local, synchronous_commit={sync}), "
        f"Redis {info['redis_version']} (local), Python {platform.python_version()}, "
        f"Django {django.get_version()}, django-q2 on the Redis broker, DEBUG off, "
        f"DB_CONN_MAX_AGE={ENV['DB_CONN_MAX_AGE']}"
    )


def main():
    LOGS.mkdir(parents=True, exist_ok=True)
    fresh_stores()
    log, lock = [], threading.Lock()
    # Port 0 is the targets' address; ports 1 and 2 are the two clusters' proxies.
    receivers = [Receiver(log, lock) for _ in range(HOSTS + 1)]
    for receiver in receivers:
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
    ports = [receiver.server_port for receiver in receivers]
    key = setup(f"http://127.0.0.1:{ports[0]}")
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(HOSTS)]
    watch = Watch()

    def sampled(condition):
        def check() -> bool:
            watch.sample()
            return condition()

        return check

    # Appended as each starts, so a failure at any point stops exactly what runs.
    processes: list[tuple[str, subprocess.Popen]] = []
    client = None
    try:
        for number, url in enumerate(urls, 1):
            processes.append((f"gunicorn-{number}", start_gunicorn(number, urlsplit(url).port)))
        for number in range(1, HOSTS + 1):
            processes.append((f"qcluster-{number}", start_cluster(number, ports[number])))
        servers = [process for name, process in processes if name.startswith("gunicorn")]
        clusters = [process for name, process in processes if name.startswith("qcluster")]
        for url in urls:
            wait_until(lambda url=url: answers(url, key), f"gunicorn on {url}", processes)
        wait_until(lambda: clusters_ready(clusters), "both clusters to start", processes)
        # A cluster's scheduler first runs 30 s after it starts, and the sweep (due since
        # migrate) with it: let that pass, so what follows is the steady state.
        wait_until(sampled(lambda: watch.sweeps), "the first sweep", processes)

        cpu_before, busy_before = cpu_by_group(), machine_seconds()
        outcomes = tempfile.TemporaryFile(mode="w+")
        declarations = NOTIFICATIONS // TARGETS
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "client",
                ",".join(urls),
                key,
                str(declarations),
                str(CLIENTS),
            ],
            stdout=outcomes,
        )
        wait_until(sampled(lambda: client.poll() is not None), "the declarations", processes)
        if client.returncode:
            raise SystemExit(f"the declaring client failed ({client.returncode})")
        outcomes.seek(0)
        sent = json.load(outcomes)["outcomes"]
        refused = Counter(str(status) for _, status, *_ in sent if status != 201)
        if refused:
            raise SystemExit(
                f"{sum(refused.values())} of {declarations} declarations not accepted "
                f"(final status: {dict(refused)}); see {LOGS}/gunicorn-*.log"
            )
        written = Notification.objects.count()
        if written != NOTIFICATIONS:
            raise SystemExit(
                f"{declarations} declarations wrote {written} notifications, not "
                f"{NOTIFICATIONS} ({TARGETS} each): something else is in the matrix"
            )

        def drained() -> bool:
            states = watch.sample()
            done = states.get("delivered", 0) + states.get("failed", 0)
            return done >= written and watch.broker.queue_size() == 0

        wait_until(drained, f"{written:,} deliveries", processes)
        # An id still in a cluster's hands (one the sweeper re-queued) runs within a moment.
        time.sleep(2)
        watch.sample()
        cpu_after, busy_after = cpu_by_group(), machine_seconds()
        log_at_end = len(log)
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
        for _, process in processes:
            stop(process)
        for receiver in receivers:
            receiver.shutdown()
    exactly_once = report(sent, log[:log_at_end], ports, watch, urls)
    window = busy_after[1] - busy_before[1]  # CPU seconds of all cores
    report_cpu(cpu_before, cpu_after, servers, clusters, window, busy_after[0] - busy_before[0])
    print(f"\nLogs of the servers and clusters: {LOGS}", file=sys.stderr)
    if not exactly_once:
        raise SystemExit("FAILED: not every notification was delivered exactly once")


def report(sent, log, ports, watch, urls) -> bool:
    """Print the Markdown; return whether every notification arrived exactly once."""
    if not log:
        raise SystemExit(f"the receiver got no request at all (logs in {LOGS})")
    rows = {
        str(row["idempotency_key"]): row
        for row in Notification.objects.values(
            "pk", "idempotency_key", "state", "attempts", "created_at", "delivered_at"
        )
    }
    times = Notification.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    first_written, last_written = times["first"].timestamp(), times["last"].timestamp()
    by_key = defaultdict(list)
    keys_by_pair = defaultdict(set)  # (incident, target) -> the keys it arrived under
    for key, arrived_at, port, reference, target in log:
        by_key[key].append((arrived_at, port))
        keys_by_pair[reference, target].add(key)
    first_seen = {key: min(seen)[0] for key, seen in by_key.items()}
    last_arrival = max(entry[1] for entry in log)
    first_arrival = min(entry[1] for entry in log)
    latencies = [
        (first_seen[key] - row["created_at"].timestamp()) * 1000
        for key, row in rows.items()
        if key in first_seen
    ]
    duplicates = {key: seen for key, seen in by_key.items() if len(seen) > 1}
    unknown = set(by_key) - set(rows)
    missing = set(rows) - set(by_key)
    second_keys = sum(len(keys) - 1 for keys in keys_by_pair.values())
    states = Counter(row["state"] for row in rows.values())
    attempts = DeliveryAttempt.objects.aggregate(
        n=Count("pk"), failed=Count("pk", filter=~Q(succeeded=True))
    )
    failed_tasks = Task.objects.filter(func=DELIVER, success=False).count()
    by_port = Counter(entry[2] for entry in log)
    requeued = [
        (started, result)
        for started, result in sorted(watch.sweeps.values())
        if started.timestamp() >= first_written - 1
    ]

    accepted = [o for o in sent if o[1] == 201]
    statuses = Counter(str(o[1]) for o in sent)
    retried = sum(1 for o in sent if o[4] > 1)
    began = min(o[2] for o in sent)
    ended = max(o[3] for o in sent)
    latency_ms = [(o[3] - o[2]) * 1000 for o in accepted]
    per_server = Counter(o[0] for o in accepted)
    total = len(rows)
    window = last_arrival - first_written

    overrides = sorted(
        f"{name}={value}" for name, value in os.environ.items() if name.startswith("BENCH_")
    )
    command = " ".join([*overrides, "make bench-delivery"])
    print(f"\n## {date.today()} — scale-out delivery on the Redis broker (`make bench-delivery`)\n")
    print(f"Command: `{command}` (`bench/delivery.py`).\n")
    print(f"Machine: {machine()}.\n")
    conf = "`-c gunicorn.conf.py` " if GUNICORN_CONF.exists() else "no gunicorn.conf.py: "
    print(
        f"Layout: 2 hosts on one machine, each one gunicorn ({conf}`-w {WORKERS}`, its own "
        f"port) and one `manage.py qcluster` (Q_WORKERS={Q_WORKERS}), all on one "
        f"PostgreSQL database and one Redis db; a stakeholder group ticked for SEV4 with "
        f"{TARGETS} webhook targets on a threaded receiver on 127.0.0.1 (answers 200 after "
        f"{DELAY:.2f} s); {CLIENTS} declaring threads, half on each server.\n"
    )
    print("| declarations (`POST /api/v1/incidents/`, SEV4) | |")
    print("|---|---|")
    print(f"| requests | {len(sent)} ({', '.join(f'{s}: {n}' for s, n in statuses.items())}) |")
    print(
        f"| accepted per server | "
        f"{', '.join(f'gunicorn {n + 1}: {per_server[n]}' for n in range(len(urls)))} |"
    )
    print(f"| retried (same Idempotency-Key) | {retried} |")
    print(
        f"| accepted | {len(accepted) / (ended - began):.1f} declarations/s over "
        f"{ended - began:.1f} s, p50 {percentile(latency_ms, 0.5):.0f} ms, "
        f"p95 {percentile(latency_ms, 0.95):.0f} ms |"
    )
    print(
        f"| notifications written | {total:,} ({total / max(1, len(accepted)):.0f} a "
        f"declaration) in {last_written - first_written:.1f} s |"
    )
    print("\n| delivery | |")
    print("|---|---|")
    print(
        f"| end to end, first declaration sent → last delivered | {last_arrival - began:.1f} s "
        f"({total / (last_arrival - began):.0f} notifications/s) |"
    )
    print(
        f"| first written → last delivered | {window:.1f} s: **{total / window:.0f} "
        f"deliveries/s** |"
    )
    print(
        f"| first delivered → last delivered | {last_arrival - first_arrival:.1f} s "
        f"({len(log) / (last_arrival - first_arrival):.0f}/s) |"
    )
    for number in range(1, HOSTS + 1):
        share = by_port[ports[number]]
        print(
            f"| delivered by qcluster {number} | {share:,} ({share / max(1, len(log)):.0%}), "
            f"{share / window:.0f}/s |"
        )
    if by_port[ports[0]]:
        print(f"| delivered not through a cluster's proxy | {by_port[ports[0]]} |")
    print(
        f"| latency, written → at the receiver | p50 {percentile(latencies, 0.5):,.0f} ms, "
        f"p95 {percentile(latencies, 0.95):,.0f} ms, max {max(latencies):,.0f} ms |"
    )
    print(
        f"| most rows waiting at once (pending + sending) | {watch.max_backlog:,}; "
        f"Redis queue at most {watch.max_queue:,} |"
    )
    print(
        f"| sweeper runs during the run | {len(requeued)}, re-queued "
        f"{sum(result or 0 for _, result in requeued):,} ids (already queued on commit: "
        f"their claim finds the row taken) |"
    )
    print("\n| exactly once | |")
    print("|---|---|")
    print(f"| requests at the receiver | {len(log):,} |")
    print(f"| distinct Idempotency-Keys | {len(by_key):,} of {total:,} rows |")
    print(f"| duplicates (same key again) | {sum(len(s) - 1 for s in duplicates.values())} |")
    print(f"| rows never received | {len(missing)} |")
    print(f"| keys not of any row | {len(unknown)} |")
    print(
        f"| (incident, target) pairs | {len(keys_by_pair):,} of {total:,}; "
        f"under a second key {second_keys} |"
    )
    print(f"| rows by state | {', '.join(f'{s}: {n:,}' for s, n in sorted(states.items()))} |")
    print(
        f"| delivery attempts | {attempts['n']:,} ({attempts['failed']} failed); "
        f"failed tasks {failed_tasks} |"
    )
    for key, seen in list(duplicates.items())[:20]:
        row = rows.get(key, {})
        print(
            f"\nDuplicate: key {key} (notification {row.get('pk')}, {row.get('attempts')} "
            f"attempts) at "
            + ", ".join(f"{at - first_written:.2f} s via port {port}" for at, port in seen)
        )
    exactly_once = not (missing or unknown or second_keys) and len(keys_by_pair) == total
    verdict = "yes" if exactly_once else "**NO**"
    print(f"\nEvery notification delivered exactly once (repeats only under its key): {verdict}.")
    return exactly_once


def report_cpu(before, after, servers, clusters, window, busy):
    def used(name):
        return (after.get(name, 0.0) - before.get(name, 0.0)) / (window / os.cpu_count())

    parties = {
        "gunicorn (both)": sum(used(f"group:{p.pid}") for p in servers),
        "qcluster (both)": sum(used(f"group:{p.pid}") for p in clusters),
        "PostgreSQL": used("postgres"),
        "Redis": used("redis"),
        "bench (receiver, client)": used("bench"),
    }
    cores = busy / (window / os.cpu_count())
    print(f"\n| CPU (cores of {os.cpu_count()}, declaring + delivering) | |")
    print("|---|---|")
    for name, value in parties.items():
        print(f"| {name} | {value:.2f} |")
    print(f"| anything else | {max(0.0, cores - sum(parties.values())):.2f} |")
    print(f"| whole machine busy | {busy / window:.0%} |")


if __name__ == "__main__":
    main()
