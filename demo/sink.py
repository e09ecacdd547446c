"""A local receiver for the demo's webhooks and phone gateway: it prints what Sitrep
sends (pages by Slack-compatible webhook, texts and calls by the phone gateway) and
answers 200. `make run` starts it beside the web server and the worker.

    python -m demo.sink [PORT]        (default 8025, or SINK_PORT)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1_000_000))
        try:
            shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            shown = body.decode("utf-8", "replace")
        print(f"--- POST {self.path}\n{shown}", flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format, *args):  # the body above says it all
        pass


def main() -> None:
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SINK_PORT", "8025"))
    print(f"Demo sink listening on http://127.0.0.1:{port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()


if __name__ == "__main__":
    main()
