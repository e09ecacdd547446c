"""Gunicorn in production: `gunicorn config.wsgi` run from the checkout reads this file
(elsewhere: `gunicorn -c /path/to/gunicorn.conf.py config.wsgi`). `make run` does not use
it; `make bench-load` does. Every choice can be changed from the environment:

- GUNICORN_BIND (127.0.0.1:8000): a reverse proxy (nginx, a load balancer) in front
  terminates TLS, buffers slow clients and logs requests; sync workers must not face slow
  clients themselves, so the default listens on loopback only.
- WEB_CONCURRENCY or GUNICORN_WORKERS (2 × cores + 1, gunicorn's own advice): one process
  per request at a time; while one waits on PostgreSQL another uses the core. Each worker
  holds a database connection (DB_CONN_MAX_AGE keeps it open), so workers × hosts must stay
  below PostgreSQL's max_connections (or put PgBouncer in between).
- GUNICORN_THREADS (1): above 1 the gthread worker class runs that many requests per
  process (less memory per request, keep-alive to the proxy); each thread holds its own
  database connection. At 1, the sync worker: the simplest, and what the benchmarks use.
- GUNICORN_MAX_REQUESTS (10000) with GUNICORN_MAX_REQUESTS_JITTER (1000): a worker is
  replaced after about that many requests, a safety net against slow memory growth; the
  jitter keeps the workers from restarting at the same moment, and the number is large
  enough that at hundreds of requests a second no worker restarts every few seconds.
- preload_app: the application is imported once in the master and the workers are
  forked from it, so a replaced worker starts in milliseconds instead of importing Django
  again (and the workers share that memory). Connections to PostgreSQL and Redis are
  opened lazily, in each worker, never shared through the fork. A code change needs a
  restart, not a HUP.
- GUNICORN_TIMEOUT (30 s): a worker silent that long is killed and replaced; no request
  of ours should come near it.
- Access log off: the reverse proxy has it, and writing a line per request costs the
  worker time. Errors go to stderr at GUNICORN_LOG_LEVEL (LOG_LEVEL, then "info").
- The worker heartbeat files live in /dev/shm (memory) when it exists: on a disk-backed
  /tmp a slow fsync can make the master think a busy worker hung.
"""

import os

wsgi_app = "config.wsgi"

bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
cores = os.cpu_count() or 1
workers = int(
    os.environ.get("WEB_CONCURRENCY") or os.environ.get("GUNICORN_WORKERS") or 2 * cores + 1
)
threads = int(os.environ.get("GUNICORN_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or 10_000)
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER") or 1_000)
preload_app = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)

accesslog = None
errorlog = "-"
loglevel = (os.environ.get("GUNICORN_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "info").lower()

if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
