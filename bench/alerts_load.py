"""The load generator of bench/alerts_intake.py: Alertmanager webhook payloads (version 4)
posted by N sender processes, each its own HTTP client, for a fixed time.

Imports no Django: it runs as a process of its own beside the server, the way
Alertmanager does. `bench/alerts_intake.py` runs it; by hand:

    python bench/alerts_load.py URL SECRET POOL.json --senders 8 --size 20 --seconds 15

POOL.json is a list of label sets already firing in Sitrep (the repeats). Of the alerts
sent, one in ten is new (`--new-every`): it takes an alertname of the pool (it joins the
incident open for it), except one new alert in `--open-every`, whose alertname has never
been seen (it opens an incident). Prints one JSON object: latencies, statuses and what
was sent, by response status."""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import random
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

PATH = "/api/v1/alerts/alertmanager/"
EXTERNAL_URL = "http://alertmanager.bench:9093"
TIMEOUT = 30


def fingerprint(labels: dict) -> str:
    """A 16-hex fingerprint of the label set, as Alertmanager gives one."""
    canonical = json.dumps(labels, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def alert(labels: dict, starts_at: str) -> dict:
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {
            "summary": f"{labels['alertname']} on {labels['instance']}",
            "description": f"{labels['alertname']} has been firing on {labels['instance']} "
            f"({labels['service']}, job {labels['job']}).",
            "runbook_url": f"https://runbooks.example.com/{labels['alertname']}",
        },
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus.bench:9090/graph?g0.expr={labels['alertname']}",
        "fingerprint": fingerprint(labels),
    }


def payload(alerts: list[dict], service: str) -> bytes:
    """An Alertmanager webhook body grouping `alerts` by service (route group_by)."""
    common = dict(alerts[0]["labels"])
    for item in alerts[1:]:
        common = {k: v for k, v in common.items() if item["labels"].get(k) == v}
    annotations = dict(alerts[0]["annotations"])
    for item in alerts[1:]:
        annotations = {k: v for k, v in annotations.items() if item["annotations"].get(k) == v}
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{service="{service}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "sitrep",
        "groupLabels": {"service": service},
        "commonLabels": common,
        "commonAnnotations": annotations,
        "externalURL": EXTERNAL_URL,
        "alerts": alerts,
    }
    return json.dumps(body).encode()


def new_labels(template: dict, tag: str, number: int, fresh_alertname: bool) -> dict:
    labels = dict(template, instance=f"{tag}-{number}.bench:9100")
    if fresh_alertname:
        labels["alertname"] = f"BenchNew{tag.replace('-', '')}N{number}"
    return labels


class Sender:
    """One sender: its own connection (re-opened when the server closes it)."""

    def __init__(self, url: str, secret: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
            "User-Agent": "Alertmanager/0.25.0 (bench)",
        }
        self.connection = None

    def post(self, body: bytes) -> int:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            self.connection.request("POST", PATH, body=body, headers=self.headers)
            response = self.connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            return 0  # no answer
        if response.will_close:  # gunicorn's sync workers close after each answer
            self.connection.close()
            self.connection = None
        return response.status


def run_sender(args) -> dict:
    index, options, pool, start_at = args
    rng = random.Random(f"{options['tag']}-{index}")
    by_service: dict[str, list[dict]] = {}
    for labels in pool:
        by_service.setdefault(labels["service"], []).append(labels)
    services = sorted(by_service)
    sender = Sender(options["url"], options["secret"])
    size, new_every, open_every = options["size"], options["new_every"], options["open_every"]
    tag = f"{options['tag']}-s{index}"
    starts_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    latencies, statuses = [], {}
    sent = {}  # by status: [requests, alert occurrences, new fingerprints, fresh alertnames]
    new_count = occurrence = 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + options["seconds"]
    while time.time() < deadline:
        service = rng.choice(services)
        chosen = []
        # Exactly one alert in `new_every` is new, spread evenly over the payloads.
        news = (occurrence + size) // new_every - occurrence // new_every
        repeats = rng.sample(by_service[service], size - news)
        fresh = 0
        for _ in range(news):
            new_count += 1
            opens = new_count % open_every == 0
            fresh += opens
            chosen.append(new_labels(rng.choice(by_service[service]), tag, new_count, opens))
        chosen.extend(repeats)
        occurrence += size
        body = payload([alert(labels, starts_at) for labels in chosen], service)
        began = time.perf_counter()
        status = sender.post(body)
        latencies.append(time.perf_counter() - began)
        statuses[status] = statuses.get(status, 0) + 1
        tally = sent.setdefault(status, [0, 0, 0, 0])
        tally[0] += 1
        tally[1] += size
        tally[2] += news
        tally[3] += fresh
    return {"latencies": latencies, "sent": sent, "finished": time.time()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("secret")
    parser.add_argument("pool", help="JSON file: the label sets already firing")
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--size", type=int, default=1, help="alerts per payload")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--new-every", type=int, default=10)
    parser.add_argument("--open-every", type=int, default=100)
    parser.add_argument("--tag", default="run", help="makes this run's new fingerprints unique")
    options = vars(parser.parse_args())
    with open(options["pool"]) as file:
        pool = json.load(file)
    start_at = time.time() + 1.0  # every sender up and waiting before the clock starts
    with multiprocessing.get_context("fork").Pool(options["senders"]) as workers:
        results = workers.map(
            run_sender, [(index, options, pool, start_at) for index in range(options["senders"])]
        )
    sent: dict[str, list[int]] = {}
    for result in results:
        for status, tally in result["sent"].items():
            total = sent.setdefault(str(status), [0, 0, 0, 0])
            for position, value in enumerate(tally):
                total[position] += value
    json.dump(
        {
            "elapsed": max(result["finished"] for result in results) - start_at,
            "latencies": [value for result in results for value in result["latencies"]],
            "sent": {
                status: dict(zip(("requests", "alerts", "new", "opening"), tally, strict=True))
                for status, tally in sent.items()
            },
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
