# The front door. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint audit format bench bench-outbox bench-alerts bench-oncall bench-console bench-load bench-delivery clean

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# A local secret shared by the web server and the worker (django-q2 signs tasks with it).
.secret_key: $(STAMP)
	umask 077; $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > .secret_key

run: $(STAMP) .secret_key
	@export SECRET_KEY="$${SECRET_KEY:-$$(cat .secret_key)}"; \
	export PHONE_GATEWAY_URL="$${PHONE_GATEWAY_URL:-http://127.0.0.1:8025/phone}"; \
	export ONCALL_PRIVATE_WEBHOOKS="$${ONCALL_PRIVATE_WEBHOOKS:-true}"; \
	$(BIN)/python manage.py migrate --no-input && \
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0 && \
	$(BIN)/python manage.py seed_demo && \
	$(BIN)/python manage.py ensure_admin && \
	exec $(BIN)/honcho start

# Browser tests drive Debian's Chromium (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -q && apt-get install -y -q chromium

# The real-Alertmanager test drives Debian's Prometheus Alertmanager.
ALERTMANAGER := /usr/bin/prometheus-alertmanager
$(ALERTMANAGER):
	apt-get update -q && apt-get install -y -q prometheus-alertmanager

# In parallel, one worker per core (pytest-xdist); TEST_JOBS=0 runs it in one process.
TEST_JOBS ?= auto
test: $(STAMP) $(CHROMIUM) $(ALERTMANAGER)
	$(BIN)/python -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Known vulnerabilities in the installed packages (pip-audit): fails when one has a fix.
# Says NOT AUDITED, and passes, when no vulnerability service can be reached.
audit: $(STAMP)
	$(BIN)/python .ci/audit.py

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles sitrep.sqlite3* .secret_key

bench: $(STAMP)
	$(BIN)/python bench/core.py

# Recovery of the outbox after its worker is killed with SIGKILL (a real qcluster).
bench-outbox: $(STAMP)
	$(BIN)/python bench/outbox_recovery.py

# "Who is on call" for 50 teams, and the paging watchdogs beside 100,000 quiet incidents.
bench-oncall: $(STAMP)
	$(BIN)/python bench/oncall.py

# The commander's console (dashboard, incident list, war room, status page, search) at
# 100,000 incidents and 1,000,000 timeline events on PostgreSQL. DATABASE_URL names the
# database (default sitrep_bench): created if missing, filled once (about a minute), reused.
# BENCH_ARGS="--json results.json --plans" saves the figures and prints the search plans.
bench-console: $(STAMP)
	$(BIN)/python bench/console.py $(BENCH_ARGS)

# Alert intake throughput: gunicorn (2 workers) on PostgreSQL, load from a second process,
# beside pgbench's single-row INSERT ceiling (pgbench comes with Debian's postgresql-contrib).
# BENCH_DATABASE_URL names the database it drops and creates (sitrep_bench_alerts).
bench-alerts: $(STAMP)
	pgbench --version >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q postgresql-contrib)
	$(BIN)/python bench/alerts_intake.py

# Load at 100,000 incidents: gunicorn (gunicorn.conf.py, 2 workers) on PostgreSQL and
# Redis, driven by wrk at 1 and 16 clients (admin pages 1 and 4, declarations 1 and 8),
# beside pgbench's ceiling. DATABASE_URL as bench-console (sitrep_bench, filled once).
# BENCH_ARGS="--source DIR --json out.json --only list" measures another checkout, saves, filters.
bench-load: $(STAMP)
	which wrk pgbench >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q wrk postgresql-contrib)
	$(BIN)/python bench/load.py $(BENCH_ARGS)

# Scale-out delivery: 2 gunicorn and 2 qcluster on the Redis broker over one PostgreSQL,
# 5,000 webhook notifications to a local receiver, each delivered exactly once. Its own
# database (sitrep_bench_delivery, dropped and created) and Redis db 6 (flushed).
bench-delivery: $(STAMP)
	$(BIN)/python bench/delivery.py
