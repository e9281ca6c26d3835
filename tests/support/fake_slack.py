"""A local stand-in for Slack's incoming webhooks and Web API `chat.postMessage`.

Slack cannot be reached from tests, so this runs a real HTTP server in a thread that
answers like Slack does:

* incoming webhooks: `POST {base}/services/T…/B…/…` with a JSON body → `200 ok`
  (text/html); an unknown or revoked hook → `404 no_service`; an empty message →
  `400 invalid_payload`/`no_text`;
* Web API: `POST {base}/api/chat.postMessage` (JSON or form body, `Authorization:
  Bearer xoxb-…`) → `200 {"ok": true, "channel": "C…", "ts": "…", "message": {…}}`,
  or `200 {"ok": false, "error": "invalid_auth" | "channel_not_found" | "no_text"}`;
* rate limiting: after `fail_next(...)` the next calls get `429 Too Many Requests` with a
  `Retry-After` header (and `{"ok": false, "error": "ratelimited"}` on the Web API).

    with FakeSlack(bot_token="xoxb-test") as slack:
        url = slack.webhook_url("alerts")
        ...
        wait_until(lambda: slack.webhook_posts(url))
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

WEBHOOK = "webhook"
POST_MESSAGE = "chat.postMessage"


class FakeSlack:
    def __init__(self, bot_token: str = "xoxb-test-token",
                 channels: tuple[str, ...] = ("alerts", "l2", "dev")) -> None:
        self.bot_token = bot_token
        self.channels = {name: f"C{i:08d}" for i, name in enumerate(channels, start=1)}
        self._lock = threading.Lock()
        self._hooks: dict[str, str] = {}   # path → name
        self._revoked: set[str] = set()
        self._posts: list[dict[str, Any]] = []
        self._failures: dict[str, list[int]] = defaultdict(list)
        self._ts = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fake-slack")

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_base(self) -> str:
        """Use as the Web API base (where `https://slack.com/api` would be)."""
        return f"{self.base_url}/api"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- test helpers ----------------------------------------------------------------------
    def webhook_url(self, name: str) -> str:
        """A fresh incoming-webhook URL (like the one Slack shows when a hook is added)."""
        n = len(self._hooks) + 1
        path = f"/services/T0000TEST/B{n:07d}/{name}{n}xYzSecret"
        with self._lock:
            self._hooks[path] = name
        return self.base_url + path

    def revoke(self, url: str) -> None:
        with self._lock:
            self._revoked.add(urllib.parse.urlsplit(url).path)

    def restore(self, url: str) -> None:
        with self._lock:
            self._revoked.discard(urllib.parse.urlsplit(url).path)

    def fail_next(self, endpoint: str = WEBHOOK, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `endpoint` (WEBHOOK or POST_MESSAGE) get 429."""
        with self._lock:
            self._failures[endpoint] += [retry_after] * times

    def posts(self) -> list[dict[str, Any]]:
        """Every accepted message, oldest first: {endpoint, target, payload, at}."""
        with self._lock:
            return [dict(p) for p in self._posts]

    def webhook_posts(self, url: str) -> list[dict[str, Any]]:
        path = urllib.parse.urlsplit(url).path
        return [p["payload"] for p in self.posts() if p["endpoint"] == WEBHOOK
                and p["target"] == path]

    def channel_posts(self, channel: str) -> list[dict[str, Any]]:
        cid = self.channels.get(channel.lstrip("#"), channel)
        return [p["payload"] for p in self.posts() if p["endpoint"] == POST_MESSAGE
                and p["target"] == cid]

    def rejected(self) -> int:
        """How many calls were answered 429."""
        with self._lock:
            return self._rejected

    _rejected = 0

    # -- the API ---------------------------------------------------------------------------
    def _take_failure(self, endpoint: str) -> int | None:
        with self._lock:
            failures = self._failures.get(endpoint)
            if failures:
                self._rejected += 1
                return failures.pop(0)
        return None

    def _webhook(self, path: str, payload: Any) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            known = path in self._hooks and path not in self._revoked
        if not known:
            return 404, {"Content-Type": "text/html"}, b"no_service"
        retry = self._take_failure(WEBHOOK)
        if retry is not None:
            return 429, {"Retry-After": str(retry), "Content-Type": "text/html"}, \
                b"rate_limited"
        if not isinstance(payload, dict):
            return 400, {"Content-Type": "text/html"}, b"invalid_payload"
        if not (payload.get("text") or payload.get("blocks") or payload.get("attachments")):
            return 400, {"Content-Type": "text/html"}, b"no_text"
        with self._lock:
            self._posts.append({"endpoint": WEBHOOK, "target": path, "payload": payload,
                                "at": time.monotonic()})
        return 200, {"Content-Type": "text/html"}, b"ok"

    def _post_message(self, auth: str, params: dict) -> tuple[int, dict[str, str], bytes]:
        def answer(body: dict, status: int = 200, headers: dict | None = None):
            return status, {"Content-Type": "application/json; charset=utf-8",
                            **(headers or {})}, json.dumps(body).encode()

        retry = self._take_failure(POST_MESSAGE)
        if retry is not None:
            return answer({"ok": False, "error": "ratelimited"}, 429,
                          {"Retry-After": str(retry)})
        token = auth.removeprefix("Bearer ").strip() or params.get("token", "")
        if not token:
            return answer({"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return answer({"ok": False, "error": "invalid_auth"})
        channel = str(params.get("channel", "")).lstrip("#")
        cid = self.channels.get(channel) or (channel if channel in self.channels.values()
                                             else None)
        if cid is None:
            return answer({"ok": False, "error": "channel_not_found"})
        if not (params.get("text") or params.get("blocks")):
            return answer({"ok": False, "error": "no_text"})
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        with self._lock:
            self._posts.append({"endpoint": POST_MESSAGE, "target": cid, "payload": params,
                                "at": time.monotonic()})
        return answer({"ok": True, "channel": cid, "ts": ts,
                       "message": {"type": "message", "text": params.get("text", ""),
                                   "bot_id": "B0FAKE", "ts": ts}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                ctype = self.headers.get("Content-Type", "")
                path = urllib.parse.urlsplit(self.path).path
                if "json" in ctype:
                    try:
                        params: Any = json.loads(raw or b"{}")
                    except ValueError:
                        params = None
                else:
                    params = {k: v[0] for k, v in
                              urllib.parse.parse_qs(raw.decode(errors="replace")).items()}
                    if "payload" in params:  # webhooks also accept payload=<json> forms
                        try:
                            params = json.loads(params["payload"])
                        except ValueError:
                            params = None
                if path.startswith("/services/"):
                    status, headers, body = slack._webhook(path, params)
                elif path == f"/api/{POST_MESSAGE}":
                    status, headers, body = slack._post_message(
                        self.headers.get("Authorization", ""),
                        params if isinstance(params, dict) else {})
                else:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
