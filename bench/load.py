"""Load at 100,000 incidents: the read paths, the admin pages and declarations served by
gunicorn (gunicorn.conf.py, 2 workers) on PostgreSQL + Redis, driven by wrk from a second
process, beside the same run's pgbench ceiling.

Run: make bench-load                      (BENCH_ARGS="--source DIR --json out.json --only list")
     .venv/bin/python bench/load.py --compare before.json after.json   (side by side, no run)
     .venv/bin/python bench/load.py --source /tmp/sitrep-before --json /tmp/load_before.json
--source DIR (default: this repository) is the code tree served and migrated; every
Django step runs in a subprocess with cwd=DIR, so one script measures an older checkout
and this one the same way. --only WORD[,WORD] runs the rows tagged so (list, search,
filter, ordering, detail, timeline, status, public, feed, admin, changelist, change,
war-room, dashboard, declare, write) or, for any other word, whose request holds it
("status.json", "severity__rank").

Environment: DATABASE_URL (postgres://postgres@127.0.0.1:5432/sitrep_bench), kept
between runs and filled once by DIR/bench/console_data.py (BENCH_CONSOLE_INCIDENTS 100000,
BENCH_CONSOLE_EVENTS 1000000; under a minute); BENCH_SECONDS (15) a point, BENCH_WARMUP_SECONDS
(2) before each; BENCH_READ_CLIENTS (1,16), BENCH_ADMIN_CLIENTS (1,4), BENCH_WRITE_CLIENTS
(1,8); BENCH_WORKERS (2), BENCH_THREADS (1: sync workers; more: gthread);
BENCH_REDIS_URL (redis://127.0.0.1:6379/5, flushed at the start); BENCH_PGBENCH_SECONDS (10).

What it does:
1. `manage.py migrate` with DIR's code (a newer tree adds its indexes to the same data),
   generates the data if the database holds no incident, and ANALYZEs. It warns when the
   database carries migrations DIR does not have (its figures would not be DIR's schema).
   The incidents earlier runs declared are deleted first, so every run reads the same data.
2. gunicorn with this repository's gunicorn.conf.py (also for an older DIR that has none):
   DEBUG off, persistent database connections (DB_CONN_MAX_AGE=60), Redis as cache and
   django-q2 broker, the API throttle set too high to matter, collected static files.
3. The user `bench-commander` (an incident commander, not a superuser, not in Security,
   so every read pays for the confidentiality filter) gets a fresh API key
   (`manage.py create_api_key`) and a password; the admin session comes from a real POST
   to /admin/login/ with the CSRF cookie and token, after django-axes is reset for it.
   The seeded stakeholder groups on-call-engineers and engineering-leads get members if
   they have none (five responders), so a declaration writes outbox rows as it would in
   production; no team or rota exists, so nobody is paged (SEV1 is never declared).
4. Each row: a 2 s warm-up at the same concurrency, then `wrk --latency` for BENCH_SECONDS
   with a Lua script (bench/load_wrk/) that rotates the row's paths and prints p50/p95/p99
   and the count of answers by status as JSON. Errors are wrk's socket errors and
   timeouts (30 s); non-2xx are answers with another status. The CPU gunicorn, PostgreSQL
   (this database's backends and its own processes) and wrk used is read from /proc.
   Before and after each measurement the server is drained: the requests wrk gave up on
   when it stopped would otherwise run into the next one.
   Reads at 1 and 16 clients (the orderings at 16 only), admin pages at 1 and 4, and
   declarations at 1 and 8, last, so the reads see the generated data only.
5. Declarations carry a title unique to the run and the row; afterwards the incidents are
   counted in PostgreSQL and compared with wrk's 2xx answers (a request still in flight
   when wrk stops may be persisted without an answer: up to one per client), with the rows
   each declaration wrote (timeline, history, roles, outbox…).
6. pgbench on the same server once gunicorn is stopped: single-row INSERTs in autocommit
   at 1 and 8 clients (bench/alerts_intake.py's pgbench()).

Prints Markdown for bench/RESULTS.md (date, machine, command, data, served tree).
"""

import argparse
import http.client
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = ROOT / "bench" / "load_wrk"
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sitrep_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
WARMUP_SECONDS = int(os.environ.get("BENCH_WARMUP_SECONDS", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))


def _clients(name: str, default: str) -> list[int]:
    return [int(n) for n in os.environ.get(name, default).split(",")]


READ_CLIENTS = _clients("BENCH_READ_CLIENTS", "1,16")
ADMIN_CLIENTS = _clients("BENCH_ADMIN_CLIENTS", "1,4")
WRITE_CLIENTS = _clients("BENCH_WRITE_CLIENTS", "1,8")

BENCH_USERNAME = "bench-commander"  # console_data.BENCH_USERNAME (not imported: DIR's code)
# Every incident this script declares has a title starting so; the next run deletes them.
TITLE_PREFIX = "load-bench "
SEARCH_WORD = "database"  # the "Orders database" service and "Paged the database team"
DECLARE_SERVICE = "checkout-api"
# Members given to the (empty) seeded matrix groups: on-call engineers hear of every
# severity, engineering leads of SEV1–SEV3 (console_data's responders, who have emails).
MATRIX_MEMBERS = {
    "on-call-engineers": ["responder000", "responder001", "responder002"],
    "engineering-leads": ["responder003", "responder004"],
}
ORDERINGS = [
    "declared_at",
    "-declared_at",
    "updated_at",
    "-updated_at",
    "reference",
    "status",
    "severity__rank",
]
TAGS = set(
    "list search filter ordering detail timeline status public feed admin changelist change "
    "war-room dashboard declare write".split()
)
OPEN_STATUSES = ("triage", "declared", "investigating", "identified", "monitoring")
# The apps whose migrations decide the schema we measure.
OUR_APPS = ("incidents", "postmortems", "remediation", "alerts", "oncall", "demo")


def _helpers():
    """bench/alerts_intake.py's helpers (pgbench, CPU by process, machine), aimed at our
    database. Importing it sets up Django with this repository's settings (only its
    connection is used, for pgbench's scratch table and the server's version) and
    rewrites os.environ, which is put back."""
    saved = dict(os.environ)
    os.environ.update(
        BENCH_DATABASE_URL=DATABASE_URL,
        BENCH_WORKERS=str(WORKERS),
        BENCH_THREADS=str(THREADS),
        DB_CONN_MAX_AGE="60",
    )
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import alerts_intake
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return alerts_intake


helpers = _helpers()


def server_environment() -> dict:
    """The production shape: what gunicorn and every manage.py step of DIR run with."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "GUNICORN_", "SQLITE_")) and name != "WEB_CONCURRENCY"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DB_CONN_MAX_AGE="60",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "load-bench-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        API_THROTTLE_RATE="100000000/min",
        LOG_LEVEL="WARNING",
        GUNICORN_WORKERS=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
    )
    return env


class Tree:
    """The served code tree: its interpreter, manage.py and revision."""

    def __init__(self, path: Path):
        self.path = path
        venv = path / ".venv" / "bin"
        self.bin = venv if (venv / "python").exists() else Path(sys.executable).parent
        self.env = server_environment()

    def run(self, *command, extra_env=None) -> str:
        done = subprocess.run(
            command,
            cwd=self.path,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(
                f"{shlex.join(command)} in {self.path} failed:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def manage(self, *args, extra_env=None) -> str:
        return self.run(str(self.bin / "python"), "manage.py", *args, extra_env=extra_env)

    def revision(self) -> str:
        def git(*args):
            return subprocess.run(
                ["git", "--no-optional-locks", "-C", str(self.path), *args],
                capture_output=True,
                text=True,
            )

        head = git("log", "-1", "--format=%h %s").stdout.strip()
        if not head:
            return "not a git checkout"
        if len(head) > 90:
            head = head[:90].rsplit(" ", 1)[0] + " …"
        dirty = git("diff", "--quiet", "HEAD", "--").returncode != 0
        return f"`{head}`" + (" with uncommitted changes" if dirty else "")


# --- the database ------------------------------------------------------------------------


def connect(**kwargs):
    return psycopg.connect(DATABASE_URL, autocommit=True, **kwargs)


def ensure_database() -> None:
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    try:
        connect().close()
        return
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise
    with psycopg.connect(DATABASE_URL, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    print(f"created database {name}", file=sys.stderr)


def scalar(sql: str, params=()):
    with connect() as db:
        return db.execute(sql, params).fetchone()[0]


def migrations_ahead(tree: Tree) -> list[str]:
    """Migrations the database has applied that DIR does not have: a newer tree's."""
    with connect() as db:
        applied = db.execute(
            "SELECT app, name FROM django_migrations WHERE app = ANY(%s)", [list(OUR_APPS)]
        ).fetchall()
    return sorted(
        f"{app}.{name}"
        for app, name in applied
        if not (tree.path / app / "migrations" / f"{name}.py").exists()
    )


DELETE_DECLARED = """
import os
from django.db import connection
from incidents.models import Incident

prefix = os.environ["LOAD_TITLE_PREFIX"]
ids = list(Incident.objects.filter(title__startswith=prefix).values_list("pk", flat=True))
if ids:
    Incident.objects.filter(pk__in=ids).delete()
    with connection.cursor() as cursor:
        # History rows outlive what they describe (no foreign key): the bench's go too.
        cursor.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND column_name = 'incident_id' AND table_name LIKE '%%historical%%'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'DELETE FROM "{table}" WHERE incident_id = ANY(%s)', [ids])
        cursor.execute("DELETE FROM incidents_historicalincident WHERE id = ANY(%s)", [ids])
print(len(ids))
"""


SETUP_PEOPLE = f"""
import json, os
from axes.utils import reset
from django.contrib.auth import get_user_model
from incidents.models import Severity, StakeholderGroup

User = get_user_model()
user = User.objects.get(username={BENCH_USERNAME!r})
user.set_password(os.environ["LOAD_PASSWORD"])
user.save(update_fields=["password"])
reset(username={BENCH_USERNAME!r})
# The migrations seed the matrix's groups empty: a declaration would tell nobody and the
# outbox go unmeasured. Members for two of them, once (left alone if they have any).
for slug, names in {MATRIX_MEMBERS!r}.items():
    group = StakeholderGroup.objects.filter(slug=slug).first()
    if group is not None and not group.members.exists():
        group.members.add(*User.objects.filter(username__in=names))
told = {{
    severity.key: User.objects.filter(
        stakeholder_groups__severities=severity, stakeholder_groups__via_status_page=False,
        is_active=True,
    ).exclude(email="").distinct().count()
    for severity in Severity.objects.order_by("rank")
}}
print(json.dumps(told))
"""


def prepare_data(tree: Tree) -> dict:
    """Migrate with DIR's code, generate if empty, drop earlier runs' declarations, ANALYZE."""
    ensure_database()
    tree.manage("migrate", "--no-input", "--verbosity", "0")
    facts = {"ahead": migrations_ahead(tree), "generated_seconds": None}
    if facts["ahead"]:
        print(
            "\n!!! The database holds migrations the served tree does not have:\n    "
            + ", ".join(facts["ahead"])
            + "\n    Its figures are NOT the served tree's schema. Roll them back with the newer"
            "\n    tree's manage.py migrate <app> <migration> first.\n",
            file=sys.stderr,
        )
    if scalar("SELECT NOT EXISTS (SELECT 1 FROM incidents_incident)"):
        print("generating the data (DIR/bench/console_data.py)…", file=sys.stderr)
        started = time.perf_counter()
        said = tree.run(str(tree.bin / "python"), "bench/console_data.py")
        facts["generated_seconds"] = time.perf_counter() - started
        facts["generator_said"] = said.strip()
        print(said.strip(), file=sys.stderr)
    removed = tree.manage(
        "shell", "-c", DELETE_DECLARED, extra_env={"LOAD_TITLE_PREFIX": TITLE_PREFIX}
    )
    facts["removed_earlier_declarations"] = int(removed.strip().splitlines()[-1])
    with connect() as db:
        db.execute("DROP TABLE IF EXISTS bench_insert")  # pgbench's, if a run was cut short
        db.execute("ANALYZE")
    return facts


def data_scale() -> dict:
    with connect() as db:
        incidents, open_, confidential = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = ANY(%s)), "
            "count(*) FILTER (WHERE confidential) FROM incidents_incident",
            [list(OPEN_STATUSES)],
        ).fetchone()
        events = db.execute("SELECT count(*) FROM incidents_timelineevent").fetchone()[0]
        pattern = f"%{SEARCH_WORD}%"
        matches, visible = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT confidential) FROM incidents_incident "
            "WHERE reference ILIKE %s OR title ILIKE %s OR summary ILIKE %s",
            [pattern] * 3,
        ).fetchone()
    return {
        "incidents": incidents,
        "open": open_,
        "confidential": confidential,
        "timeline_events": events,
        "search_matches": matches,
        "search_matches_not_confidential": visible,
    }


def sample_incidents() -> list[tuple[int, str, str]]:
    """(pk, reference, status) of four visible incidents: the two latest open ones that are
    declared (not triage) and the two latest resolved or closed, none confidential."""
    with connect() as db:
        return db.execute(
            "(SELECT id, reference, status FROM incidents_incident WHERE NOT confidential "
            "AND status = ANY(%s) ORDER BY declared_at DESC LIMIT 2) UNION ALL "
            "(SELECT id, reference, status FROM incidents_incident WHERE NOT confidential "
            "AND status IN ('resolved', 'closed') ORDER BY declared_at DESC LIMIT 2)",
            [list(OPEN_STATUSES[1:])],
        ).fetchall()


def declared_rows(prefix: str) -> dict:
    """The incidents whose title starts with prefix and the rows that hang off them, by
    table: every table with an incident_id column, and the incidents' own history."""
    with connect() as db:
        ids = [
            pk
            for (pk,) in db.execute(
                "SELECT id FROM incidents_incident WHERE left(title, length(%s)) = %s",
                [prefix, prefix],
            )
        ]
        rows = {"incidents_incident": len(ids)}
        if not ids:
            return rows
        tables = db.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND column_name = 'incident_id' ORDER BY table_name"
        ).fetchall()
        for (table,) in tables:
            rows[table] = db.execute(
                f'SELECT count(*) FROM "{table}" WHERE incident_id = ANY(%s)', [ids]
            ).fetchone()[0]
        rows["incidents_historicalincident"] = db.execute(
            "SELECT count(*) FROM incidents_historicalincident WHERE id = ANY(%s)", [ids]
        ).fetchone()[0]
    return {table: count for table, count in rows.items() if count}


# --- the server ----------------------------------------------------------------------------


def start_gunicorn(tree: Tree, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(tree.bin / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),  # ours, also for a tree that has none
            "--chdir",
            str(tree.path),
        ],
        cwd=tree.path,
        env={**tree.env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        start_new_session=True,  # the arbiter and its workers share one group
    )


def get(port: int, path: str, headers=None, method="GET", body=None):
    server = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        server.request(method, path, body=body, headers=headers or {})
        response = server.getresponse()
        return response.status, response.headers, response.read()
    finally:
        server.close()


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if get(port, "/admin/login/")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 90 s")


def cookies(headers) -> dict:
    jar = SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def admin_session(port: int, password: str) -> str:
    """Sign in as the admin's own form does; return the Cookie header value."""
    status, headers, body = get(port, "/admin/login/?next=/admin/")
    csrf = cookies(headers).get("csrftoken")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if status != 200 or not csrf or not token:
        raise SystemExit(f"/admin/login/ answered {status} without a CSRF cookie and token")
    form = urlencode(
        {
            "csrfmiddlewaretoken": token.group(1).decode(),
            "username": BENCH_USERNAME,
            "password": password,
            "next": "/admin/",
        }
    )
    status, headers, body = get(
        port,
        "/admin/login/?next=/admin/",
        method="POST",
        body=form,
        headers={
            "Cookie": f"csrftoken={csrf}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    session = cookies(headers).get("sessionid")
    if status != 302 or not session:
        raise SystemExit(
            f"signing in as {BENCH_USERNAME} answered {status} without a session (a django-axes "
            f"lockout answers 429): {body[:300]!r}"
        )
    cookie = f"sessionid={session}; csrftoken={csrf}"
    status = get(port, "/admin/", headers={"Cookie": cookie})[0]
    if status != 200:
        raise SystemExit(f"/admin/ answered {status} to the new session")
    return cookie


# --- the rows --------------------------------------------------------------------------


def rows(samples, api_header, admin_header, prefix) -> list[dict]:
    refs = [reference for _, reference, _ in samples]
    pks = [pk for pk, _, _ in samples]
    incidents = "/api/v1/incidents/"

    def read(tags, name, paths, clients, header=api_header):
        return {"tags": tags, "name": name, "paths": paths, "clients": clients, "header": header}

    table = [
        read("list", f"GET `{incidents}`", [incidents], READ_CLIENTS),
        read("list search", f"GET `{incidents}?search={SEARCH_WORD}`",
             [f"{incidents}?search={SEARCH_WORD}"], READ_CLIENTS),
        read("list filter", f"GET `{incidents}?open=true&severity=critical`",
             [f"{incidents}?open=true&severity=critical"], READ_CLIENTS),
        *(
            read("list ordering", f"GET `{incidents}?ordering={field}`",
                 [f"{incidents}?ordering={field}"], READ_CLIENTS[-1:])
            for field in ORDERINGS
        ),
        read("detail", f"GET `{incidents}{{ref}}/`", [f"{incidents}{ref}/" for ref in refs],
             READ_CLIENTS),
        read("timeline", f"GET `{incidents}{{ref}}/timeline/`",
             [f"{incidents}{ref}/timeline/" for ref in refs], READ_CLIENTS),
        read("status public", "GET `/status/`", ["/status/"], READ_CLIENTS, header=""),
        read("status public", "GET `/status.json`", ["/status.json"], READ_CLIENTS, header=""),
        read("status public feed", "GET `/status/feed/`", ["/status/feed/"], READ_CLIENTS,
             header=""),
        read("admin changelist", "admin changelist `/admin/incidents/incident/`",
             ["/admin/incidents/incident/"], ADMIN_CLIENTS, header=admin_header),
        read("admin change", "admin change page `/admin/incidents/incident/<pk>/change/`",
             [f"/admin/incidents/incident/{pk}/change/" for pk in pks], ADMIN_CLIENTS,
             header=admin_header),
        read("admin war-room", "admin war room `/admin/incidents/incident/<pk>/war-room/`",
             [f"/admin/incidents/incident/{pk}/war-room/" for pk in pks], ADMIN_CLIENTS,
             header=admin_header),
        read("admin dashboard", "admin dashboard `/admin/`", ["/admin/"], ADMIN_CLIENTS,
             header=admin_header),
        {**read("declare write", f"POST `{incidents}` (declare)", [], WRITE_CLIENTS),
         "declare": prefix},
    ]  # fmt: skip
    return table


def wrk(port: int, row: dict, clients: int, seconds: int, title_prefix: str = "") -> dict:
    script = "declare.lua" if "declare" in row else "get.lua"
    done = subprocess.run(
        [
            "wrk",
            f"-t{min(clients, 2)}",
            f"-c{clients}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(WRK_DIR / script),
            f"http://127.0.0.1:{port}",
            "--",
            *row["paths"],
        ],
        env={
            **os.environ,
            "LOAD_WRK_DIR": str(WRK_DIR),
            "LOAD_HEADER": row["header"],
            "LOAD_TITLE_PREFIX": title_prefix,
            "LOAD_SERVICE": DECLARE_SERVICE,
            "LOAD_COMMANDER": BENCH_USERNAME,
        },
        capture_output=True,
        text=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("LOAD_RESULT "):
            return json.loads(line.removeprefix("LOAD_RESULT "))
    raise SystemExit(f"wrk gave no result ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def probe(port: int, row: dict) -> list[str]:
    """One request per path before the load: anything but 200 is said at once."""
    name, _, value = row["header"].partition(":")
    headers = {name: value.strip()} if row["header"] else {}
    said = []
    for path in row["paths"]:
        status, _, body = get(port, path, headers)
        if status != 200:
            said.append(f"{path} answered {status}: {body[:200]!r}")
    return said


def cpu_snapshot() -> dict:
    """helpers.cpu_by_process() with a backend's state cut off its command line: a
    PostgreSQL backend retitles itself ("… idle", "… SELECT") as it works, and a pid whose
    command changed between two readings would count all its CPU since it started."""
    snapshot = {}
    for pid, (command, group, seconds) in helpers.cpu_by_process().items():
        if command.startswith("postgres: ") and ")" in command:
            command = command[: command.rindex(")") + 1] + " "
        snapshot[pid] = (command, group, seconds)
    return snapshot


def drain(port: int) -> None:
    """Wait until the workers are idle: when wrk stops, the requests it gave up on are
    still queued at gunicorn and would run into the next measurement. One cheap request
    per worker thread at once, until they all come back quickly."""
    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(WORKERS * THREADS) as pool:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            list(pool.map(lambda _: get(port, "/admin/login/"), range(WORKERS * THREADS)))
            if time.perf_counter() - started < 0.1:
                return


def measure(port: int, row: dict, clients: int, server_group: int, run_prefix: str) -> dict:
    declaring = "declare" in row
    wrk(port, row, clients, WARMUP_SECONDS, f"{run_prefix}w{clients}")
    drain(port)
    prefix = f"{run_prefix}c{clients} "
    cpu_before, busy_before = cpu_snapshot(), helpers.machine_busy()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk(port, row, clients, SECONDS, prefix.rstrip())
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = helpers.cpu_used(cpu_before, cpu_snapshot(), server_group)
    busy_after = helpers.machine_busy()
    drain(port)
    window = (busy_after[1] - busy_before[1]) / os.cpu_count()
    elapsed = result["duration_us"] / 1e6
    statuses = {int(status): count for status, count in result["statuses"].items()}
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    errors = result["errors"]
    measured = {
        "name": row["name"],
        "clients": clients,
        "requests": result["requests"],
        "seconds": elapsed,
        "rps": result["requests"] / elapsed,
        "ok": ok,
        "ok_per_s": ok / elapsed,
        "p50_ms": result["p50_us"] / 1000,
        "p95_ms": result["p95_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "error_kinds": errors,
        "non_2xx": result["requests"] - ok,
        "statuses": statuses,
        "cpu_gunicorn": cpu["gunicorn"] / window,
        "cpu_postgres": cpu["postgres"] / window,
        "cpu_wrk": (
            children.ru_utime
            + children.ru_stime
            - children_before.ru_utime
            - children_before.ru_stime
        )
        / window,
        "cpu_busy": (busy_after[0] - busy_before[0]) / window,
    }
    if declaring:  # after drain(): the requests wrk gave up on have committed too
        written = declared_rows(prefix)
        persisted = written.get("incidents_incident", 0)
        measured["persisted"] = persisted
        measured["persisted_per_s"] = persisted / elapsed
        measured["rows_written"] = written
        # wrk stops with up to one request per connection in flight: the server finishes
        # those (persisted, never answered). Fewer rows than 2xx answers is a lost write.
        measured["unanswered"] = persisted - ok
        measured["mismatch"] = not 0 <= persisted - ok <= clients
        if measured["mismatch"]:
            print(
                f"\n!!! {row['name']} at {clients}: {ok} answered 2xx but {persisted} "
                "incidents persisted\n",
                file=sys.stderr,
            )
    return measured


# --- output ----------------------------------------------------------------------------


def ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def rate(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def report(run: dict) -> str:
    data = run["data"]
    lines = [
        f"### Load at {data['incidents']:,} incidents, {run['date']} — {run['label']}",
        "",
        f"- Machine: {run['machine']}",
        f"- Command: `{run['command']}`",
        f"- Served: `{run['source']}` at {run['revision']}",
        f"- Data: {data['incidents']:,} incidents ({data['open']:,} open, "
        f"{data['confidential']:,} confidential), {data['timeline_events']:,} timeline events; "
        + (
            f"generated this run in {run['prepare']['generated_seconds']:.0f} s"
            if run["prepare"]["generated_seconds"] is not None
            else "generated by an earlier run"
        )
        + f"; {run['prepare']['removed_earlier_declarations']:,} incidents declared by earlier "
        "runs deleted first.",
        f"- Search word `{SEARCH_WORD}`: {data['search_matches']:,} incidents match "
        f"(reference, title or summary), {data['search_matches_not_confidential']:,} of them "
        f"not confidential; the API's count for bench-commander: {run['search_count']}.",
        "- Declarations (`declare.lua`): SEV4, SEV3, SEV4, SEV3, SEV4, SEV2, SEV4, SEV3, SEV4, "
        f"SEV3 in turn, type outage, service `{DECLARE_SERVICE}`, bench-commander as commander; "
        "the stakeholder matrix emails "
        + ", ".join(f"{count} for {key}" for key, count in run["matrix"].items())
        + " (members of on-call-engineers and engineering-leads; the other seeded groups "
        "are empty), and no team or rota exists, so each one notes *paged nobody*.",
        "- Detail, timeline, change page and war room rotate over "
        + ", ".join(f"{ref} ({status}, pk {pk})" for pk, ref, status in run["samples"])
        + ".",
        f"- {SECONDS} s a point after a {WARMUP_SECONDS} s warm-up; gunicorn "
        f"{WORKERS} {'sync' if THREADS == 1 else f'gthread ×{THREADS}'} workers "
        "(gunicorn.conf.py), DEBUG off, DB_CONN_MAX_AGE=60, Redis cache and broker; "
        "the orderings at "
        f"{READ_CLIENTS[-1]} clients only.",
    ]
    if run["prepare"]["ahead"]:
        lines.append(
            "- **The database carried migrations the served tree lacks: "
            + ", ".join(run["prepare"]["ahead"])
            + ".**"
        )
    if run["pgbench"]:
        lines.append(
            "- PostgreSQL ceiling (pgbench, single-row INSERT in autocommit, "
            f"{os.environ.get('BENCH_PGBENCH_SECONDS', '10')} s): "
            + ", ".join(
                f"{clients} client{'s' if clients > 1 else ''} {tps:,.0f} tps"
                for clients, tps in run["pgbench"].items()
            )
            + "."
        )
    lines += [
        "",
        "| request | clients | req/s | p50 | p95 | errors / non-2xx "
        "| CPU (cores): gunicorn · PostgreSQL · wrk · machine busy |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in run["rows"]:
        statuses = ", ".join(
            f"{count} × {status}"
            for status, count in sorted(row["statuses"].items())
            if not 200 <= status < 300
        )
        lines.append(
            f"| {row['name']} | {row['clients']} | {rate(row['rps'])} | {ms(row['p50_ms'])} "
            f"| {ms(row['p95_ms'])} | {row['errors']} / {row['non_2xx']}"
            + (f" ({statuses})" if statuses else "")
            + f" | {row['cpu_gunicorn']:.2f} · {row['cpu_postgres']:.2f} · {row['cpu_wrk']:.2f}"
            f" · {row['cpu_busy']:.2f} of {os.cpu_count()} |"
        )
    declared = [row for row in run["rows"] if "persisted" in row]
    if declared:
        tables = sorted({table for row in declared for table in row["rows_written"]})
        lines += [
            "",
            "Declarations: wrk's 2xx answers against the incidents found in PostgreSQL "
            "afterwards (by the row's title prefix), and the rows each one wrote.",
            "",
            "| clients | answered 2xx | persisted | persisted/s | unanswered but persisted "
            "| check | rows per declaration |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in declared:
            persisted = max(1, row["persisted"])
            written = row["rows_written"]
            per = ", ".join(
                f"{table.removeprefix('incidents_')} {written.get(table, 0) / persisted:.2f}"
                for table in tables
                if table != "incidents_incident"
            )
            lines.append(
                f"| {row['clients']} | {row['ok']:,} | {row['persisted']:,} "
                f"| {rate(row['persisted_per_s'])} | {row['unanswered']} "
                f"| {'**MISMATCH**' if row['mismatch'] else 'ok'} | {per} |"
            )
    return "\n".join(lines) + "\n"


def compare(before: dict, after: dict) -> str:
    """The rows of two runs (--json files) side by side, with each run's pgbench ceiling."""

    def ceiling(run):
        return ", ".join(
            f"{c} client{'s' * (c > 1)} {rate(tps)} tps"
            for c, tps in ((int(clients), tps) for clients, tps in run["pgbench"].items())
        )

    lines = [
        f"- Before: `{before['source']}` at {before['revision']}, {before['date']}; "
        f"pgbench ceiling {ceiling(before)}.",
        f"- After: `{after['source']}` at {after['revision']}, {after['date']}; "
        f"pgbench ceiling {ceiling(after)}.",
        "",
        "| request | clients | before req/s | p50 | p95 | after req/s | p50 | p95 | × |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    earlier = {(row["name"], row["clients"]): row for row in before["rows"]}
    for row in after["rows"]:
        old = earlier.get((row["name"], row["clients"]))
        then = (
            f"{rate(old['ok_per_s'])} | {ms(old['p50_ms'])} | {ms(old['p95_ms'])}"
            if old
            else "— | — | —"
        )
        times = f"{row['ok_per_s'] / old['ok_per_s']:.1f}" if old and old["ok_per_s"] else "—"
        lines.append(
            f"| {row['name']} | {row['clients']} | {then} | {rate(row['ok_per_s'])} "
            f"| {ms(row['p50_ms'])} | {ms(row['p95_ms'])} | {times} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="print two saved runs (--json) side by side, and measure nothing",
    )
    parser.add_argument("--source", type=Path, default=ROOT, help="the code tree to serve")
    parser.add_argument("--json", type=Path, help="also save the figures here")
    parser.add_argument("--only", help="run only rows whose name holds one of these (a,b)")
    parser.add_argument("--label", help="what to call this run in the heading")
    options = parser.parse_args()
    if options.compare:
        before, after = (json.loads(path.read_text()) for path in options.compare)
        print(compare(before, after))
        return
    tree = Tree(options.source.resolve())
    for needed in ("manage.py", "bench/console_data.py"):
        if not (tree.path / needed).exists():
            raise SystemExit(f"{tree.path} has no {needed}: --source names a Sitrep checkout")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `make bench-load` installs it (apt-get install wrk)")
    if subprocess.run(["pgbench", "--version"], capture_output=True).returncode != 0:
        raise SystemExit("pgbench is missing: `make bench-load` installs it (postgresql-contrib)")
    if urlsplit(DATABASE_URL).scheme not in ("postgres", "postgresql"):
        raise SystemExit("bench/load.py measures PostgreSQL: DATABASE_URL=postgres://…")

    prepared = prepare_data(tree)
    tree.manage("collectstatic", "--no-input", "--verbosity", "0")
    password = secrets.token_urlsafe(24)
    matrix = json.loads(
        tree.manage("shell", "-c", SETUP_PEOPLE, extra_env={"LOAD_PASSWORD": password})
        .strip()
        .splitlines()[-1]
    )
    key = tree.manage(
        "create_api_key", BENCH_USERNAME, "--name", "load-bench", "--expires-in-days", "1"
    ).splitlines()[-1]
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()

    data = data_scale()
    samples = sample_incidents()
    run_prefix = f"{TITLE_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S} "
    api_header = f"Authorization: Bearer {key}"
    port = helpers.free_port()
    server = start_gunicorn(tree, port)
    results = []
    try:
        wait_ready(port)
        admin_header = f"Cookie: {admin_session(port, password)}"
        status, _, body = get(
            port,
            f"/api/v1/incidents/?search={SEARCH_WORD}",
            {"Authorization": f"Bearer {key}"},
        )
        search_count = json.loads(body).get("count", "none given") if status == 200 else status
        wanted = [part.lower() for part in (options.only or "").split(",") if part]
        for row in rows(samples, api_header, admin_header, run_prefix):
            if wanted and not any(
                part in row["tags"].split() if part in TAGS else part in row["name"].lower()
                for part in wanted
            ):
                continue
            for problem in probe(port, row):
                print(f"! {row['name']}: {problem}", file=sys.stderr)
            for clients in row["clients"]:
                measured = measure(port, row, clients, server.pid, run_prefix)
                results.append(measured)
                print(
                    f"# {measured['name']} × {clients}: {rate(measured['rps'])} req/s, "
                    f"p50 {ms(measured['p50_ms'])}, p95 {ms(measured['p95_ms'])}, "
                    f"errors {measured['errors']}, non-2xx {measured['non_2xx']}",
                    file=sys.stderr,
                )
    finally:
        helpers.stop(server)
    ceilings = {clients: helpers.pgbench(clients) for clients in sorted({1, *WRITE_CLIENTS})}
    with connect() as db:
        db.execute("DROP TABLE IF EXISTS bench_insert")

    run = {
        "date": str(date.today()),
        "label": options.label or ("this tree" if tree.path == ROOT else str(tree.path)),
        "machine": helpers.machine(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "source": str(tree.path),
        "revision": tree.revision(),
        "database": urlsplit(DATABASE_URL).path.lstrip("/"),
        "prepare": prepared,
        "data": data,
        "search_count": search_count,
        "matrix": matrix,
        "samples": samples,
        "pgbench": ceilings,
        "rows": results,
    }  # fmt: skip
    text = report(run)
    print("\n" + text)
    if options.json:
        options.json.write_text(json.dumps(run, indent=2, default=str) + "\n")
        print(f"saved {options.json}", file=sys.stderr)
    if any(row.get("mismatch") for row in results):
        raise SystemExit("declarations answered 2xx and persisted differ: see above")


if __name__ == "__main__":
    main()
