"""Alert intake throughput: Alertmanager payloads posted to gunicorn (2 workers) on
PostgreSQL from a second process, with every stored alert counted afterwards.

Run: make bench-alerts
Its own database: BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/sitrep_bench_alerts, dropped and created anew (not
DATABASE_URL, so a run never drops the database you work on). BENCH_SECONDS (15) a
scenario, BENCH_SIZES (1,20) alerts a payload, BENCH_SENDERS (1,8), BENCH_POOL (2000),
BENCH_WORKERS (2), BENCH_THREADS (1: sync workers; more: gthread), BENCH_PGBENCH_SECONDS (10).

What it does:
1. A fresh database, `migrate` (the seeded detection rules), five services, and an
   Alertmanager source made with `manage.py create_alert_source` (its secret is the last
   line printed).
2. gunicorn (`config.wsgi`, sync workers) on 127.0.0.1, DEBUG off, persistent database
   connections (DB_CONN_MAX_AGE, 60 s by default, with health checks).
3. A pool of firing alerts, posted once before measuring: 10 alertnames × 5 services ×
   instances, grouped by service as an Alertmanager route would. The seeded "Everything
   else" rule groups by {alertname}, so this opens 10 triage incidents. Then ANALYZE, as
   autovacuum would within a minute.
4. Each scenario runs `bench/alerts_load.py` as its own process, one sender process per
   concurrent sender, each sending as soon as its previous answer came (closed loop).
   90 % of the alerts sent repeat a firing alert of the pool (one UPDATE); 10 % carry a
   new fingerprint (a new instance) and join the incident open for their alertname; one
   new alert in 100 has an alertname never seen and opens a triage incident. Every non-2xx
   answer counts as an error.
5. After each scenario the rows are counted: new Alert rows must equal the new
   fingerprints answered 2xx, and the rise in sum(times_received) the alert occurrences
   answered 2xx (a repeat adds one, a new row starts at one): an answer is not a save.
   The CPU each party used (from /proc) shows who had the two cores.
6. pgbench on the same server: single-row INSERTs in autocommit (one commit each, as an
   intake request is one transaction) at 1 and 8 clients: the ceiling the rates are
   compared with.
7. The queries one request costs, by kind, counted in-process (django.test.Client).

Prints Markdown for bench/RESULTS.md (with the machine and the date).
"""

import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sitrep_bench_alerts"
)
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
POOL = int(os.environ.get("BENCH_POOL", "2000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# More than 1: gunicorn's gthread workers, each with this many threads (and keep-alive).
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
SENDERS = [int(n) for n in os.environ.get("BENCH_SENDERS", "1,8").split(",")]
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1,20").split(",")]
PGBENCH_SECONDS = int(os.environ.get("BENCH_PGBENCH_SECONDS", "10"))

ALERTNAMES = [
    "HighRequestLatency",
    "HighErrorRatio",
    "InstanceDown",
    "DiskWillFillIn4Hours",
    "TargetMissing",
    "TooManyRestarts",
    "CertificateExpiring",
    "QueueBacklogGrowing",
    "ReplicationLag",
    "SLOBurnRateFast",
]
SERVICES = ["checkout", "search", "payments", "accounts", "catalogue"]
JOBS = {"checkout": "api", "search": "search", "payments": "api", "accounts": "auth"}


def environment() -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": DATABASE_URL,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        # WhiteNoise's note that collectstatic has not run: the bench serves no static files.
        "PYTHONWARNINGS": "ignore:No directory at:UserWarning",
    }
    env.setdefault("SECRET_KEY", "bench-alerts-" + "x" * 40)
    return env


ENV = environment()
# This process also reads the database (the counts) and runs the in-process query count.
os.environ.update(ENV, ALLOWED_HOSTS="127.0.0.1,testserver")
sys.path.insert(0, str(ROOT))

if urlsplit(DATABASE_URL).scheme not in ("postgres", "postgresql"):
    raise SystemExit("bench/alerts_intake.py measures PostgreSQL: BENCH_DATABASE_URL=postgres://…")

import django  # noqa: E402

warnings.filterwarnings("ignore", "No directory at", UserWarning)  # as PYTHONWARNINGS above
django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from alerts.models import Alert, AlertPayload  # noqa: E402
from incidents.models import Incident, Service  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import alerts_load  # noqa: E402


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


def fresh_database() -> None:
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    manage("migrate", "--no-input", "--verbosity", "0")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "-w",
            str(WORKERS),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *(["--threads", str(THREADS)] if THREADS > 1 else []),
        ],
        cwd=ROOT,
        env={**ENV, "ALLOWED_HOSTS": "127.0.0.1"},
        start_new_session=True,  # the arbiter and its workers share one group
    )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass


def wait_ready(port: int, source: str, secret: str) -> None:
    """Poll the heartbeat endpoint until the server answers 200 (or give up)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        server = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            server.request(
                "POST",
                f"/api/v1/alerts/{source}/heartbeat/",
                headers={"Authorization": f"Bearer {secret}"},
            )
            if server.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            server.close()
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


def pool_labels() -> list[dict]:
    per_pair = max(1, POOL // (len(ALERTNAMES) * len(SERVICES)))
    return [
        {
            "alertname": alertname,
            "service": service,
            "instance": f"{service}-{number}.bench:9100",
            "job": JOBS.get(service, "node"),
            "severity": "warning",
            "env": "production",
        }
        for alertname in ALERTNAMES
        for service in SERVICES
        for number in range(per_pair)
    ]


def seed(url: str, secret: str, pool: list[dict]) -> None:
    """Post the pool once (20 alerts a payload, by service): these are the repeats."""
    sender = alerts_load.Sender(url, secret)
    starts_at = "2026-12-01T00:00:00Z"
    for service in SERVICES:
        mine = [labels for labels in pool if labels["service"] == service]
        for first in range(0, len(mine), 20):
            alerts = [alerts_load.alert(labels, starts_at) for labels in mine[first : first + 20]]
            status = sender.post(alerts_load.payload(alerts, service))
            if status != 200:
                raise SystemExit(f"seeding the pool: answer {status}")


def counts() -> dict:
    return {
        "alerts": Alert.objects.count(),
        "received": Alert.objects.aggregate(n=Sum("times_received"))["n"] or 0,
        "payloads": AlertPayload.objects.filter(status=AlertPayload.Status.PROCESSED).count(),
        "waiting": AlertPayload.objects.exclude(status=AlertPayload.Status.PROCESSED).count(),
        "incidents": Incident.objects.count(),
    }


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, int, float]]:
    """Every process's (command line, process group, CPU seconds so far), from /proc."""
    seen = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        seen[int(stat.parent.name)] = (command, int(fields[2]), seconds)
    return seen


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    values = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


def cpu_used(before: dict, after: dict, server_group: int) -> dict:
    """CPU seconds the server's processes and PostgreSQL (the backends of the bench's
    database and the server's own processes, not other databases' backends) used."""
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    used = {"gunicorn": 0.0, "postgres": 0.0}
    for pid, (command, group, seconds) in after.items():
        earlier = before.get(pid)
        spent = seconds - (earlier[2] if earlier and earlier[0] == command else 0.0)
        if group == server_group:
            used["gunicorn"] += spent
        elif command.startswith("postgres") and (f" {name} " in command or "(" not in command):
            used["postgres"] += spent  # a backend of ours, or the walwriter, checkpointer…
    return used


def run_scenario(url, secret, pool_file, senders, size, tag, server_group) -> dict:
    before = counts()
    cpu_before, busy_before = cpu_by_process(), machine_busy()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "alerts_load.py"),
            url,
            secret,
            pool_file,
            "--senders",
            str(senders),
            "--size",
            str(size),
            "--seconds",
            str(SECONDS),
            "--tag",
            tag,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_used(cpu_before, cpu_by_process(), server_group)
    busy_after = machine_busy()
    result = json.loads(done.stdout)
    after = counts()
    sent = result["sent"]
    answered = {status: tally for status, tally in sent.items() if status.startswith("2")}
    ok = {key: sum(t[key] for t in answered.values()) for key in ("requests", "alerts", "new")}
    opening = sum(t["opening"] for t in answered.values())
    errors = sum(t["requests"] for status, t in sent.items() if not status.startswith("2"))
    elapsed = result["elapsed"]
    stored_rows = after["alerts"] - before["alerts"]
    stored_occurrences = after["received"] - before["received"]
    latencies = [value * 1000 for value in result["latencies"]]
    window = (busy_after[1] - busy_before[1]) / os.cpu_count()
    return {
        "senders": senders,
        "size": size,
        "requests": ok["requests"],
        "errors": errors,
        "statuses": {status: t["requests"] for status, t in sent.items()},
        "elapsed": elapsed,
        "rps": ok["requests"] / elapsed,
        # Persisted: what the rows say after the run, not what the answers claimed.
        "persisted_per_s": stored_occurrences / elapsed,
        "sent_alerts": ok["alerts"],
        "sent_new": ok["new"],
        "stored_rows": stored_rows,
        "stored_occurrences": stored_occurrences,
        "lost": ok["alerts"] - stored_occurrences,
        # Every request answered 2xx is a processed payload row.
        "payload_gap": ok["requests"] - (after["payloads"] - before["payloads"]),
        "opened_expected": opening,
        "opened": after["incidents"] - before["incidents"],
        "waiting": after["waiting"] - before["waiting"],
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        # In cores: CPU seconds over the wall-clock seconds the readings were apart.
        "cpu_gunicorn": cpu["gunicorn"] / window,
        "cpu_postgres": cpu["postgres"] / window,
        "cpu_load": (
            children.ru_utime
            + children.ru_stime
            - children_before.ru_utime
            - children_before.ru_stime
        )
        / window,
        "cpu_busy": (busy_after[0] - busy_before[0]) / window,
    }


PGBENCH_SCRIPT = (
    "INSERT INTO bench_insert (source_id, fingerprint, labels, seen_at) "
    'VALUES (1, md5(random()::text), \'{"alertname": "HighRequestLatency"}\', now());\n'
)


def pgbench(clients: int) -> float:
    """Single-row INSERTs in autocommit at `clients` connections: transactions per second."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_insert")
        cursor.execute(
            "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, source_id int NOT NULL, "
            "fingerprint text NOT NULL, labels jsonb NOT NULL, seen_at timestamptz NOT NULL)"
        )
    parts = urlsplit(DATABASE_URL)
    script = Path(tempfile.mkdtemp()) / "insert.sql"
    script.write_text(PGBENCH_SCRIPT)
    done = subprocess.run(
        [
            "pgbench",
            "-n",
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(PGBENCH_SECONDS),
            "-f",
            str(script),
            parts.path.lstrip("/"),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **({"PGPASSWORD": parts.password} if parts.password else {})},
    )
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if match is None:
        raise SystemExit(f"pgbench said:\n{done.stdout}\n{done.stderr}")
    return float(match.group(1))


def query_counts(secret: str, pool: list[dict]) -> list[tuple]:
    """Queries and in-process time of one request, by kind (20 requests each)."""
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    starts_at = "2026-12-01T00:00:00Z"
    service = SERVICES[0]
    mine = [labels for labels in pool if labels["service"] == service]
    counter = iter(range(10**6))

    def new(alertname=None):
        number = next(counter)
        return dict(
            mine[number % len(mine)],
            instance=f"qc-{number}.bench:9100",
            **({"alertname": alertname} if alertname else {}),
        )

    kinds = [
        ("1 alert, a repeat", lambda: [mine[0]]),
        ("20 alerts, all repeats", lambda: mine[:20]),
        ("1 alert, new, joins an open incident", lambda: [new()]),
        ("20 alerts: 18 repeats + 2 new (the mix)", lambda: mine[:18] + [new(), new()]),
        ("1 alert, new, opens an incident", lambda: [new(f"QueryCount{next(counter)}")]),
    ]
    rows = []
    for name, labels in kinds:
        samples, queries_seen = [], set()
        for _ in range(20):
            body = alerts_load.payload(
                [alerts_load.alert(item, starts_at) for item in labels()], service
            )
            connection.queries_log.clear()
            began = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                response = client.post(
                    alerts_load.PATH, body, content_type="application/json", **headers
                )
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.content
            queries_seen.add(len(queries))
        rows.append((name, sorted(queries_seen), statistics.median(samples)))
    return rows


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
    kind = "sync workers" if THREADS == 1 else f"gthread workers × {THREADS} threads"
    return (
        f"{os.cpu_count()} cores ({cpu}), {kib / 1024 / 1024:.0f} GiB RAM, "
        f"PostgreSQL {server} (local, synchronous_commit={sync}), "
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"gunicorn {WORKERS} {kind}, DB_CONN_MAX_AGE={ENV.get('DB_CONN_MAX_AGE', '60')}"
    )


def main():
    # Debian's /usr/bin/pgbench is a wrapper that exists even when no pgbench is installed.
    if (
        shutil.which("pgbench") is None
        or subprocess.run(["pgbench", "--version"], capture_output=True).returncode != 0
    ):
        raise SystemExit("pgbench is missing: `make bench-alerts` installs it (postgresql-contrib)")
    fresh_database()
    for service in SERVICES:
        Service.objects.create(name=service.capitalize(), slug=service)
    secret = manage("create_alert_source", "bench-am", "--kind", "alertmanager").splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_gunicorn(port)
    try:
        wait_ready(port, "bench-am", secret)
        pool = pool_labels()
        seed(url, secret, pool)
        # Statistics for the fresh tables, as autovacuum takes them within a minute: without
        # them the planner scans every firing alert of the source for each payload.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        pool_file = Path(tempfile.mkdtemp()) / "pool.json"
        pool_file.write_text(json.dumps(pool))
        seeded = counts()
        results = []
        for size in SIZES:
            for senders in SENDERS:
                results.append(
                    run_scenario(
                        url, secret, str(pool_file), senders, size, f"a{size}x{senders}", server.pid
                    )
                )
                row = results[-1]
                print(
                    f"# {size} alert(s) × {senders} sender(s): {row['rps']:.0f} req/s, "
                    f"{row['persisted_per_s']:.0f} alerts/s, p95 {row['p95']:.0f} ms",
                    file=sys.stderr,
                )
    finally:
        stop(server)
    ceilings = {clients: pgbench(clients) for clients in sorted(set(SENDERS))}
    kinds = query_counts(secret, pool)

    print(f"\n{date.today()} — {machine()}\n")
    print(
        f"Pool: {seeded['alerts']} firing alerts in {seeded['incidents']} triage incidents; "
        f"{SECONDS:.0f} s a scenario.\n"
    )
    print(
        "| payload | senders | requests/s | alerts persisted/s | p50 | p95 | p99 | max "
        "| errors | sent → stored (occurrences) | new fingerprints sent → rows | lost "
        "| incidents opened | ÷ pgbench tps (same clients) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        ceiling = ceilings[row["senders"]]
        print(
            f"| {row['size']} alert{'s' if row['size'] > 1 else ''} | {row['senders']} "
            f"| {row['rps']:.0f} | {row['persisted_per_s']:.0f} | {row['p50']:.1f} ms "
            f"| {row['p95']:.1f} ms | {row['p99']:.1f} ms | {row['max']:.0f} ms | {row['errors']} "
            f"| {row['sent_alerts']:,} → {row['stored_occurrences']:,} "
            f"| {row['sent_new']:,} → {row['stored_rows']:,} "
            f"| {row['lost']} | {row['opened']} (expected {row['opened_expected']}) "
            f"| requests {row['rps'] / ceiling:.3f}, "
            f"alerts {row['persisted_per_s'] / ceiling:.2f} |"
        )
        if row["waiting"] or row["payload_gap"] or set(row["statuses"]) - {"200"}:
            print(
                f"\nAbove: answers {row['statuses']}; payloads not processed: {row['waiting']}; "
                f"2xx answers without a processed payload: {row['payload_gap']}\n"
            )
    print()
    for clients, tps in ceilings.items():
        print(
            f"pgbench, single-row INSERT in autocommit, {clients} client(s), "
            f"{PGBENCH_SECONDS} s: {tps:,.0f} tps"
        )
    print(
        f"\n| payload | senders | CPU (cores of {os.cpu_count()}): gunicorn | PostgreSQL "
        "| load generator | anything else | whole machine busy |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in results:
        ours = row["cpu_gunicorn"] + row["cpu_postgres"] + row["cpu_load"]
        print(
            f"| {row['size']} | {row['senders']} | {row['cpu_gunicorn']:.2f} "
            f"| {row['cpu_postgres']:.2f} | {row['cpu_load']:.2f} "
            f"| {max(0.0, row['cpu_busy'] - ours):.2f} "
            f"| {row['cpu_busy'] / os.cpu_count():.0%} |"
        )
    print("\n| request (in-process, django.test.Client) | queries | median |")
    print("|---|---|---|")
    for name, seen, median in kinds:
        print(f"| {name} | {'/'.join(str(n) for n in seen)} | {median:.1f} ms |")


if __name__ == "__main__":
    main()
