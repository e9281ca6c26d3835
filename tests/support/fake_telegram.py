"""A local stand-in for Telegram's Bot API that speaks its real HTTP/JSON wire format.

Telegram's public API cannot be reached from tests, so this runs a real HTTP server in a
thread: bots talk to it exactly as to `https://api.telegram.org` (set the API base to
`tg.base_url`). Requests go to `{base}/bot{token}/{method}` (JSON body, form-encoded body,
multipart for uploads, or query string), files are served at
`{base}/file/bot{token}/{file_path}`. Answers are `{"ok": true, "result": ...}` shaped like
the real API's, errors `{"ok": false, "error_code": ..., "description": ...}`.

    with FakeTelegram() as tg:
        tg.push_update(tg.message_update(chat_id=42, text="/start"))
        ...
        wait_until(lambda: tg.calls("sendMessage"))

When a webhook is set (setWebhook), pushed updates are POSTed to it (with the
`X-Telegram-Bot-Api-Secret-Token` header when a secret was given) instead of being queued
for getUpdates, and getUpdates answers 409 like the real API does.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

BOT_USER = {"id": 7000000001, "is_bot": True, "first_name": "Service desk",
            "username": "desk_test_bot", "can_join_groups": False,
            "can_read_all_group_messages": False, "supports_inline_queries": False}


class FakeTelegram:
    """A Bot API server on 127.0.0.1:<free port>; thread-safe helpers for tests."""

    def __init__(self, token: str | None = None, max_poll_seconds: float = 2.0) -> None:
        # token=None accepts any token (the bot's token is checked by the bot's config).
        self.token = token
        self.max_poll_seconds = max_poll_seconds
        self._lock = threading.Condition()
        self._updates: deque[dict] = deque()
        self._update_ids = itertools.count(100_000_001)
        self._message_ids = itertools.count(1)
        self._calls: dict[str, list[tuple[int, dict]]] = defaultdict(list)
        self._failures: dict[str, list[int]] = defaultdict(list)
        self._files: dict[str, tuple[bytes, str]] = {}
        self._sent: list[dict] = []  # the Message objects the bot created, in order
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, HTTP status)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fake-telegram")
        self._delivery: threading.Thread | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeTelegram:
        self._thread.start()
        self._delivery = threading.Thread(target=self._deliver_webhooks, daemon=True,
                                          name="fake-telegram-webhook")
        self._delivery.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers ----------------------------------------------------------------------

    def push_update(self, update: dict) -> dict:
        """Queue an update for getUpdates (or the webhook); assigns update_id if missing."""
        with self._lock:
            if "update_id" not in update:
                update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
            self._lock.notify_all()
        return update

    def calls(self, method: str) -> list[dict]:
        """The parameters of every call of `method` received so far, oldest first."""
        with self._lock:
            return [dict(c) for _, c in self._calls[method]]

    def sent_to(self, chat_id: int) -> list[dict]:
        """Every sendMessage/editMessageText/sendDocument addressed to `chat_id`."""
        out = []
        with self._lock:
            for method in ("sendMessage", "editMessageText", "sendDocument"):
                out += [(seq, dict(c, _method=method)) for seq, c in self._calls[method]
                        if str(c.get("chat_id")) == str(chat_id)]
        return [c for _, c in sorted(out, key=lambda sc: sc[0])]

    def messages_to(self, chat_id: int) -> list[dict]:
        """The Message objects (with their message_id) the bot sent to `chat_id`."""
        with self._lock:
            return [dict(m) for m in self._sent if str(m["chat"]["id"]) == str(chat_id)]

    def add_file(self, file_id: str, data: bytes, file_path: str) -> None:
        with self._lock:
            self._files[file_id] = (data, file_path)

    def fail_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get 429 Too Many Requests."""
        with self._lock:
            self._failures[method] += [retry_after] * times

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    @staticmethod
    def _user(user_id: int, first_name: str, last_name: str | None, username: str | None,
              language_code: str | None) -> dict:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def message_update(self, chat_id: int, text: str | None = None, *,
                       user_id: int | None = None, first_name: str = "Ivan",
                       last_name: str | None = "Petrov", username: str | None = None,
                       language_code: str | None = "ru",
                       reply_to_message: dict | None = None,
                       reply_to_message_id: int | None = None,
                       photo: list[dict] | str | None = None, document: dict | None = None,
                       caption: str | None = None) -> dict:
        """A realistic private-chat `message` update.

        `reply_to_message_id` builds a minimal replied-to bot message; `photo` may be a
        file_id (sizes are made up) or a list of PhotoSize; `document` a Document dict
        (file_id, file_name, mime_type, file_size).
        """
        uid = user_id if user_id is not None else chat_id
        user = self._user(uid, first_name, last_name, username, language_code)
        chat = {"id": chat_id, "type": "private", "first_name": first_name}
        if last_name:
            chat["last_name"] = last_name
        if username:
            chat["username"] = username
        message: dict[str, Any] = {"message_id": next(self._message_ids) + 500_000,
                                   "from": user, "chat": chat, "date": int(time.time())}
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"offset": 0, "length": len(command),
                                        "type": "bot_command"}]
        if reply_to_message_id is not None and reply_to_message is None:
            reply_to_message = {"message_id": reply_to_message_id, "from": BOT_USER,
                                "chat": chat, "date": int(time.time()) - 60, "text": "…"}
        if reply_to_message is not None:
            message["reply_to_message"] = reply_to_message
        if photo is not None:
            if isinstance(photo, str):
                photo = [
                    {"file_id": photo + "-s", "file_unique_id": photo[:8] + "s",
                     "width": 90, "height": 60, "file_size": 1200},
                    {"file_id": photo, "file_unique_id": photo[:8] + "x",
                     "width": 1280, "height": 853, "file_size": 90_000},
                ]
            message["photo"] = photo
        if document is not None:
            message["document"] = {"file_unique_id": document["file_id"][:8] + "d", **document}
        if caption is not None:
            message["caption"] = caption
        return {"update_id": next(self._update_ids), "message": message}

    def callback_update(self, chat_id: int, data: str, *, message_id: int = 1,
                        user_id: int | None = None, first_name: str = "Ivan",
                        message_text: str = "…", message: dict | None = None) -> dict:
        """A `callback_query` update: the user pressed an inline button on a bot message.

        `message` may be the bot's Message (e.g. from `messages_to`) the button belongs to.
        """
        uid = user_id if user_id is not None else chat_id
        user = self._user(uid, first_name, None, None, "ru")
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._update_ids) * 7919),
                "from": user,
                "message": message or {"message_id": message_id, "from": BOT_USER,
                                       "chat": {"id": chat_id, "type": "private",
                                                "first_name": first_name},
                                       "date": int(time.time()) - 5, "text": message_text},
                "chat_instance": str(-abs(hash(chat_id)) % 10**18),
                "data": data,
            },
        }

    # -- the API ---------------------------------------------------------------------------

    def _message(self, chat_id: Any, **extra: Any) -> dict:
        chat_num = int(chat_id) if str(chat_id).lstrip("-").isdigit() else chat_id
        return {"message_id": next(self._message_ids), "from": BOT_USER,
                "chat": {"id": chat_num, "type": "private"}, "date": int(time.time()),
                **extra}

    def _api(self, method: str, params: dict) -> tuple[int, dict]:
        with self._lock:
            failures = self._failures.get(method)
            if failures:
                retry_after = failures.pop(0)
                return 429, {"ok": False, "error_code": 429,
                             "description": f"Too Many Requests: retry after {retry_after}",
                             "parameters": {"retry_after": retry_after}}
            if method != "getUpdates":
                self._calls[method].append((time.monotonic_ns(), params))
        if method == "getMe":
            return 200, {"ok": True, "result": BOT_USER}
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "setWebhook":
            url = params.get("url", "")
            with self._lock:
                self.webhook = ({"url": url, "secret_token": params.get("secret_token")}
                                if url else None)
                self._lock.notify_all()
            return 200, {"ok": True, "result": True,
                         "description": "Webhook was set" if url else "Webhook was deleted"}
        if method == "deleteWebhook":
            with self._lock:
                was = self.webhook
                self.webhook = None
                if str(params.get("drop_pending_updates", "")).lower() in ("true", "1"):
                    self._updates.clear()
            return 200, {"ok": True, "result": True,
                         "description": "Webhook was deleted" if was
                         else "Webhook is already deleted"}
        if method == "getWebhookInfo":
            with self._lock:
                info = {"url": self.webhook["url"] if self.webhook else "",
                        "has_custom_certificate": False,
                        "pending_update_count": len(self._updates)}
            return 200, {"ok": True, "result": info}
        if method in ("sendMessage", "sendDocument", "sendPhoto"):
            if "chat_id" not in params:
                return 400, {"ok": False, "error_code": 400,
                             "description": "Bad Request: chat_id is empty"}
            extra: dict[str, Any] = {}
            if method == "sendMessage":
                if not str(params.get("text", "")).strip():
                    return 400, {"ok": False, "error_code": 400,
                                 "description": "Bad Request: message text is empty"}
                extra["text"] = params["text"]
            else:
                doc = params.get("document") or params.get("photo")
                name = doc.get("filename") if isinstance(doc, dict) else "file"
                size = len(doc.get("data", b"")) if isinstance(doc, dict) else 0
                fid = f"BQACAgI{next(self._message_ids)}"
                extra["document"] = {"file_id": fid, "file_unique_id": fid[-8:],
                                     "file_name": name, "file_size": size}
                if params.get("caption"):
                    extra["caption"] = params["caption"]
            if params.get("reply_markup"):
                markup = params["reply_markup"]
                extra["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
            with self._lock:
                message = self._message(params["chat_id"], **extra)
                self._sent.append(message)
                return 200, {"ok": True, "result": message}
        if method == "editMessageText":
            with self._lock:
                return 200, {"ok": True, "result": self._message(
                    params.get("chat_id", 0), text=params.get("text", ""),
                    edit_date=int(time.time()))}
        if method == "answerCallbackQuery":
            return 200, {"ok": True, "result": True}
        if method == "getFile":
            with self._lock:
                found = self._files.get(str(params.get("file_id")))
            if found is None:
                return 400, {"ok": False, "error_code": 400,
                             "description": "Bad Request: invalid file_id"}
            data, path = found
            return 200, {"ok": True, "result": {
                "file_id": params["file_id"], "file_unique_id": str(params["file_id"])[:8],
                "file_size": len(data), "file_path": path}}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _get_updates(self, params: dict) -> tuple[int, dict]:
        with self._lock:
            if self.webhook:
                return 409, {"ok": False, "error_code": 409,
                             "description": "Conflict: can't use getUpdates method while "
                                            "webhook is active; use deleteWebhook to delete "
                                            "the webhook first"}
            self._calls["getUpdates"].append((time.monotonic_ns(), params))
            offset = int(params.get("offset") or 0)
            # An offset confirms every update before it: they are never sent again.
            while offset and self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
            timeout = min(float(params.get("timeout") or 0), self.max_poll_seconds)
            limit = int(params.get("limit") or 100)
            deadline = time.monotonic() + timeout
            while not self._updates and not self._closed and not self.webhook:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return 200, {"ok": True, "result": list(itertools.islice(self._updates, limit))}

    def _deliver_webhooks(self) -> None:
        """Like Telegram: POST each update to the webhook until it answers 2xx."""
        client = httpx.Client(timeout=10)
        while True:
            with self._lock:
                while not self._closed and not (self.webhook and self._updates):
                    self._lock.wait(0.5)
                if self._closed:
                    client.close()
                    return
                update = self._updates[0]
                hook = dict(self.webhook or {})
            headers = {"Content-Type": "application/json"}
            if hook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            try:
                status = client.post(hook["url"], content=json.dumps(update),
                                     headers=headers).status_code
            except httpx.HTTPError:
                status = 0
            with self._lock:
                self.webhook_deliveries.append((update["update_id"], status))
                if 200 <= status < 300 and self._updates and self._updates[0] is update:
                    self._updates.popleft()
            if not 200 <= status < 300:
                time.sleep(0.3)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot went away mid-poll (e.g. a test killed it)

            def _json(self, status: int, payload: dict) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json")

            def _route(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                parts = parsed.path.strip("/").split("/")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(parts) >= 3 and parts[0] == "file" and parts[1].startswith("bot"):
                    token, file_path = parts[1][3:], "/".join(parts[2:])
                    if fake.token is not None and token != fake.token:
                        return self._json(401, {"ok": False, "error_code": 401,
                                                "description": "Unauthorized"})
                    with fake._lock:
                        match = [d for d, p in fake._files.values() if p == file_path]
                    if not match:
                        return self._json(404, {"ok": False, "error_code": 404,
                                                "description": "Not Found"})
                    return self._send(200, match[0], "application/octet-stream")
                if len(parts) != 2 or not parts[0].startswith("bot"):
                    return self._json(404, {"ok": False, "error_code": 404,
                                            "description": "Not Found"})
                token, method = parts[0][3:], parts[1]
                if fake.token is not None and token != fake.token:
                    return self._json(401, {"ok": False, "error_code": 401,
                                            "description": "Unauthorized"})
                try:
                    params = _parse_params(parsed.query, self.headers.get("Content-Type", ""),
                                           body)
                except ValueError as exc:
                    return self._json(400, {"ok": False, "error_code": 400,
                                            "description": f"Bad Request: {exc}"})
                status, payload = fake._api(method, params)
                self._json(status, payload)

            do_GET = _route  # noqa: N815 (http.server's names)
            do_POST = _route  # noqa: N815

        return Handler


def _parse_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Bot API parameters from a query string, JSON, form-encoded or multipart body.

    Uploaded files become `{"filename", "content_type", "data"}` dicts.
    """
    params: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
    ctype = content_type.split(";")[0].strip().lower()
    if not body:
        return params
    if ctype == "application/json":
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise ValueError("can't parse JSON") from None
        if not isinstance(data, dict):
            raise ValueError("parameters must be a JSON object")
        params.update(data)
    elif ctype == "application/x-www-form-urlencoded":
        params.update(urllib.parse.parse_qsl(body.decode()))
    elif ctype == "multipart/form-data":
        raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            data = part.get_payload(decode=True) or b""
            if filename is not None:
                params[name] = {"filename": filename,
                                "content_type": part.get_content_type(), "data": data}
            else:
                params[name] = data.decode(part.get_content_charset() or "utf-8")
    return params
