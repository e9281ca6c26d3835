"""The Telegram bot: webhook endpoint, long polling, the request dialog and bot messages.

Every update is recorded by its `update_id` before it is acted on (so a redelivered update
does nothing twice), dialog state lives in `telegram_dialogs` (so it survives a restart),
and messages intake owes a user after a bus event (e.g. the request's number once the
card exists) go through `telegram_outbox`, written in the consumer's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any

from desk_contracts.catalog import (
    FieldErrors,
    FieldType,
    FormField,
    ServiceDefinition,
    applicable_fields,
    validate_fields,
)
from desk_contracts.events import (
    AttachmentRef,
    Person,
    ReplyReceived,
    RequestRated,
    RequestReceived,
    clean_name,
)
from desk_runtime.http import Forbidden, NotFound
from desk_runtime.logging import get_logger
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.service import ServiceRuntime
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pymongo.errors import DuplicateKeyError

from intake.access import offered_without_identity, refusal
from intake.attachments import AttachmentStore, AttachmentTooLarge
from intake.metrics import TELEGRAM_UPDATES
from intake.repository import IntakeRepository
from intake.settings import IntakeSettings
from intake.telegram.client import BotApi, TelegramError
from intake.telegram.texts import t

log = get_logger(__name__)
OUTBOX_IDLE_SECONDS = 5.0
router = APIRouter(prefix="/v1/telegram", tags=["telegram"])
_RATE = re.compile(r"^rate:([0-9a-fA-F-]{1,64}):([1-5])$")


def _lang(user: dict | None) -> str:
    return "ru" if (user or {}).get("language_code", "").startswith("ru") else "en"


class TelegramBot:
    def __init__(self, runtime: ServiceRuntime, settings: IntakeSettings,
                 attachments: AttachmentStore):
        self.runtime = runtime
        self.config = settings.telegram
        self.attachments = attachments
        self.repo = IntakeRepository(runtime.db)
        self.api: BotApi | None = None
        self._outbox_wake = asyncio.Event()
        self._locks: dict[int, asyncio.Lock] = {}

    @property
    def enabled(self) -> bool:
        return self.config.mode != "off" and bool(self.config.token)

    async def start(self) -> None:
        await self.repo.db["telegram_updates"].create_index("at", expireAfterSeconds=7 * 86400)
        await self.repo.db["telegram_outbox"].create_index([("sent", 1), ("created_at", 1)])
        if not self.enabled:
            return
        self.api = BotApi(self.config.token, self.config.api_base)
        tasks = self.runtime.tasks
        if self.config.mode == "polling":
            tasks.spawn("telegram-poll", self._poll)
        elif self.config.webhook_url:
            tasks.spawn("telegram-hook", self._set_webhook, critical=False)
        # a consumer that queued a message commits: send it now, not at the next look
        self.runtime.on_commit(self._outbox_wake.set)
        tasks.spawn("telegram-outbox", self._send_outbox)

    async def stop(self) -> None:
        await self.runtime.tasks.stop({"telegram-poll", "telegram-hook", "telegram-outbox"})
        if self.api is not None:
            await self.api.close()

    async def _set_webhook(self) -> None:
        while True:
            try:
                await self.api.call("setWebhook", url=self.config.webhook_url,
                                    secret_token=self.config.webhook_secret or None,
                                    allowed_updates=["message", "callback_query"])
                return
            except Exception as exc:
                log.warning("telegram.set_webhook_failed", error=str(exc))
                await asyncio.sleep(5)

    # -- update sources ---------------------------------------------------------------------

    async def _poll(self) -> None:
        """Long polling; the offset is stored, so a restart continues where it stopped."""
        state = self.repo.telegram_state
        while True:
            try:
                await self.api.call("deleteWebhook")
                break
            except Exception as exc:
                log.warning("telegram.delete_webhook_failed", error=str(exc))
                await asyncio.sleep(2)
        while True:
            try:
                doc = await state.find_one({"_id": "polling"}) or {}
                updates = await self.api.call(
                    "getUpdates", offset=doc.get("offset") or None,
                    timeout=self.config.poll_timeout_seconds,
                    allowed_updates=["message", "callback_query"])
                for update in updates:
                    await self.handle_or_give_up(update)
                    await state.update_one({"_id": "polling"},
                                           {"$set": {"offset": update["update_id"] + 1}},
                                           upsert=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("telegram.poll_failed", error=str(exc))
                await asyncio.sleep(1)

    async def handle_or_give_up(self, update: dict, max_attempts: int = 5) -> None:
        """Retry a failing update a few times, then record it as failed and move on, so
        one poison update cannot stop the bot."""
        try:
            await self.handle_update(update)
        except Exception as exc:
            seen = self.repo.db["telegram_updates"]
            doc = await seen.find_one_and_update(
                {"_id": update.get("update_id")},
                {"$inc": {"attempts": 1}, "$set": {"error": str(exc)[:500],
                                                   "update": update, "at": datetime.now(UTC)}},
                upsert=True, return_document=True)
            if doc and doc.get("attempts", 0) >= max_attempts:
                await seen.update_one({"_id": doc["_id"]}, {"$set": {"done": True,
                                                                      "failed": True}})
                TELEGRAM_UPDATES.labels("any", "failed").inc()
                log.error("telegram.update_failed", update_id=doc["_id"], error=str(exc))
                return
            raise

    async def handle_update(self, update: dict) -> None:
        """Handle one update once: a redelivered update_id is skipped."""
        update_id = update.get("update_id")
        if not isinstance(update_id, int):
            TELEGRAM_UPDATES.labels("invalid", "refused").inc()
            return
        seen = self.repo.db["telegram_updates"]
        if await seen.find_one({"_id": update_id, "done": True}):
            TELEGRAM_UPDATES.labels("any", "duplicate").inc()
            return
        chat = ((update.get("message") or {}).get("chat") or
                ((update.get("callback_query") or {}).get("message") or {}).get("chat") or {})
        lock = self._locks.setdefault(int(chat.get("id") or 0), asyncio.Lock())
        async with lock:
            if await seen.find_one({"_id": update_id, "done": True}):
                return
            if "message" in update:
                kind = "message"
                await self._on_message(update_id, update["message"])
            elif "callback_query" in update:
                kind = "callback"
                await self._on_callback(update_id, update["callback_query"])
            else:
                kind = "other"
            await seen.update_one({"_id": update_id},
                                  {"$set": {"done": True, "at": datetime.now(UTC)}}, upsert=True)
        TELEGRAM_UPDATES.labels(kind, "handled").inc()

    # -- sending ----------------------------------------------------------------------------

    async def send(self, chat_id: int, text: str, keyboard: list[list[dict]] | None = None,
                   reply_to: int | None = None) -> dict | None:
        if self.api is None:
            return None
        markup = {"inline_keyboard": keyboard} if keyboard else None
        return await self.api.call("sendMessage", chat_id=chat_id, text=text,
                                   reply_markup=markup, reply_to_message_id=reply_to)

    async def _send_outbox(self) -> None:
        outbox = self.repo.db["telegram_outbox"]
        while True:
            try:
                async for item in outbox.find({"sent": False}).sort("created_at", 1).limit(50):
                    sent = await self.send(item["chat_id"], item["text"])
                    await outbox.update_one({"_id": item["_id"]},
                                            {"$set": {"sent": True,
                                                      "message_id": sent["message_id"]}})
                    if item.get("card_id"):
                        await self.repo.threads.update_one(
                            {"_id": item["card_id"]},
                            {"$addToSet": {"message_ids":
                                           f"tg:{item['chat_id']}:{sent['message_id']}"}})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("telegram.outbox_failed", error=str(exc))
            # woken by a commit that may have queued a message; else look now and then
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_wake.wait(), OUTBOX_IDLE_SECONDS)
            self._outbox_wake.clear()

    # -- dialog -----------------------------------------------------------------------------

    async def _dialog(self, chat_id: int) -> dict:
        return await self.repo.dialogs.find_one({"_id": chat_id}) or {"_id": chat_id,
                                                                       "state": "idle"}

    async def _save(self, dialog: dict) -> None:
        dialog["updated_at"] = datetime.now(UTC)
        await self.repo.dialogs.replace_one({"_id": dialog["_id"]}, dialog, upsert=True)

    async def _services(self) -> list[ServiceDefinition]:
        out = []
        for service in await self.repo.catalog_copy.all():
            # a Telegram user has no address to check against access rules (domains,
            # addresses or groups): only open services are offered
            if offered_without_identity(service):
                out.append(service)
        return out

    async def _on_message(self, update_id: int, message: dict) -> None:
        chat_id = message["chat"]["id"]
        if message["chat"].get("type") != "private":
            return
        user = message.get("from") or {}
        lang = _lang(user)
        text = (message.get("text") or message.get("caption") or "").strip()
        command = text.split()[0].split("@")[0].lower() if text.startswith("/") else None
        if command == "/start":
            return await self._start(chat_id, user, lang)
        if command == "/my":
            return await self._my(chat_id, lang)
        if command == "/cancel":
            await self.repo.dialogs.delete_one({"_id": chat_id})
            await self.send(chat_id, t("cancelled", lang))
            return
        if command == "/help":
            await self.send(chat_id, t("help", lang))
            return
        reply_to = message.get("reply_to_message")
        dialog = await self._dialog(chat_id)
        if reply_to and dialog["state"] in ("idle", "choose_service"):
            return await self._reply(update_id, message, reply_to, lang)
        files = await self._files(chat_id, message, lang, update_id)
        if dialog["state"] == "describe":
            dialog.setdefault("attachments", [])
            dialog["attachments"] += [f.model_dump(mode="json") for f in files]
            if text:
                dialog["text"] = text
                dialog["state"] = "fields"
                await self._save(dialog)
                return await self._next_field(dialog, lang)
            await self._save(dialog)
            return
        if dialog["state"] == "fields":
            if files:
                dialog.setdefault("attachments", [])
                dialog["attachments"] += [f.model_dump(mode="json") for f in files]
                await self._save(dialog)
                if not text:
                    return
            return await self._answer(dialog, text, lang, user)
        if dialog["state"] == "choose_service":
            await self.send(chat_id, t("use_buttons", lang))
            return
        await self.send(chat_id, t("help", lang))

    async def _start(self, chat_id: int, user: dict, lang: str) -> None:
        services = await self._services()
        if not services:
            await self.send(chat_id, t("no_services", lang))
            return
        await self._save({"_id": chat_id, "state": "choose_service", "lang": lang,
                          "user": user})
        keyboard = [[{"text": s.name.get(lang), "callback_data": f"svc:{s.id}"}]
                    for s in services]
        await self.send(chat_id, t("choose_service", lang), keyboard)

    async def _my(self, chat_id: int, lang: str) -> None:
        lines = []
        threads = [th async for th in self.repo.threads.find(
            {"requester.telegram_chat_id": chat_id})]
        # SD-9 before SD-10
        threads.sort(key=lambda th: int(re.sub(r"\D", "", th.get("number") or "") or 0))
        for th in threads:
            lines.append(f"{th['number']} — {th.get('title', '')} — {th.get('customer_status')}")
        async for rq in self.repo.requests.find({"requester.telegram_chat_id": chat_id}):
            if not await self.repo.threads.find_one({"request_id": rq["_id"]}, {"_id": 1}):
                lines.append(f"«{rq.get('subject', '')}» — {t('my_pending', lang)}")
        if not lines:
            await self.send(chat_id, t("my_none", lang))
            return
        await self.send(chat_id, "\n".join([t("my_header", lang), *lines]))

    async def _files(self, chat_id: int, message: dict, lang: str, update_id: int
                     ) -> list[AttachmentRef]:
        wanted: list[tuple[str, str, str | None, int]] = []
        if message.get("photo"):
            best = message["photo"][-1]
            wanted.append((best["file_id"], f"photo-{message['message_id']}.jpg", "image/jpeg",
                           int(best.get("file_size") or 0)))
        if message.get("document"):
            doc = message["document"]
            wanted.append((doc["file_id"], doc.get("file_name") or "document",
                           doc.get("mime_type"), int(doc.get("file_size") or 0)))
        refs = []
        for n, (file_id, name, ctype, size) in enumerate(wanted):
            if size > self.attachments.max_bytes:
                REJECTED_INPUT.labels("intake", "telegram", "file_too_large").inc()
                await self.send(chat_id, t("file_too_large", lang, size=size,
                                           limit=self.attachments.max_bytes))
                continue
            data, _ = await self.api.download(file_id)
            try:
                refs.append(await self.attachments.store(
                    data, name, ctype, source="telegram",
                    attachment_id=f"tg-{update_id}-{n}"))
            except AttachmentTooLarge:
                REJECTED_INPUT.labels("intake", "telegram", "file_too_large").inc()
                await self.send(chat_id, t("file_too_large", lang, size=len(data),
                                           limit=self.attachments.max_bytes))
        return refs

    async def _next_field(self, dialog: dict, lang: str) -> None:
        service = await self.repo.service(dialog["service_id"])
        if service is None:
            await self.repo.dialogs.delete_one({"_id": dialog["_id"]})
            await self.send(dialog["_id"], t("no_services", lang))
            return
        answers = dialog.get("answers", {})
        skipped = set(dialog.get("skipped", []))
        for f in applicable_fields(service, answers):
            if f.key in answers or f.key in skipped:
                continue
            dialog["field"] = f.key
            await self._save(dialog)
            return await self._ask(dialog["_id"], f, lang)
        await self._submit(dialog, service, lang)

    async def _ask(self, chat_id: int, f: FormField, lang: str) -> None:
        label = f.label.get(lang)
        if f.help:
            label += f"\n{f.help.get(lang)}"
        text = t("ask_field", lang, label=label, optional="" if f.required else t("optional", lang))
        keyboard: list[list[dict]] = []
        if f.type in (FieldType.SELECT, FieldType.MULTISELECT):
            keyboard = [[{"text": o.label.get(lang), "callback_data": f"opt:{f.key}:{o.value}"}]
                        for o in f.options]
        elif f.type == FieldType.CHECKBOX:
            keyboard = [[{"text": t("yes", lang), "callback_data": f"opt:{f.key}:true"},
                         {"text": t("no", lang), "callback_data": f"opt:{f.key}:false"}]]
        if not f.required:
            keyboard.append([{"text": t("skip", lang), "callback_data": f"skip:{f.key}"}])
        await self.send(chat_id, text, keyboard or None)

    async def _answer(self, dialog: dict, value: Any, lang: str, user: dict | None,
                      skip: bool = False) -> None:
        service = await self.repo.service(dialog["service_id"])
        key = dialog.get("field")
        field = next((f for f in service.fields if f.key == key), None) if service else None
        if service is None or field is None:
            return await self._next_field(dialog, lang)
        if skip:
            if field.required:
                await self.send(dialog["_id"], t("invalid", lang, label=field.label.get(lang),
                                                  error="is required"))
                return
            dialog.setdefault("skipped", []).append(key)
            await self._save(dialog)
            return await self._next_field(dialog, lang)
        if field.type in (FieldType.SELECT, FieldType.CHECKBOX) and isinstance(value, str) \
                and not any(value == o.value for o in field.options) \
                and field.type == FieldType.SELECT:
            # typed text for a choice: accept an option's label too
            match = [o.value for o in field.options
                     if value.strip().lower() in (o.label.get("en").lower(),
                                                  o.label.get("ru").lower())]
            value = match[0] if match else value
        if field.type == FieldType.MULTISELECT and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        answers = {**dialog.get("answers", {}), key: value}
        try:
            validate_fields(service, answers)
            error = None
        except FieldErrors as exc:
            error = exc.errors.get(key)
        if error:
            REJECTED_INPUT.labels("intake", "telegram", "invalid_field").inc()
            await self.send(dialog["_id"], t("invalid", lang, label=field.label.get(lang),
                                              error=error))
            return
        dialog["answers"] = answers
        await self._save(dialog)
        await self._next_field(dialog, lang)

    async def _refused(self, chat_id: int, service: ServiceDefinition, lang: str) -> bool:
        """A restricted service (an old menu, or restricted since) is refused in the dialog,
        saying why: the bot cannot tell who is asking."""
        if await refusal(self.repo, service, None) is None:
            return False
        REJECTED_INPUT.labels("intake", "telegram", "identity_required").inc()
        await self.repo.dialogs.delete_one({"_id": chat_id})
        await self.send(chat_id, t("restricted_service", lang, service=service.name.get(lang)))
        return True

    async def _submit(self, dialog: dict, service: ServiceDefinition, lang: str) -> None:
        chat_id = dialog["_id"]
        if await self._refused(chat_id, service, lang):
            return
        try:
            fields = validate_fields(service, dialog.get("answers", {}))
        except FieldErrors as exc:  # the catalog changed mid-dialog: ask again
            for key in exc.errors:
                dialog.get("answers", {}).pop(key, None)
            await self._save(dialog)
            return await self._next_field(dialog, lang)
        user = dialog.get("user") or {}
        text = dialog.get("text", "")
        title = text.split("\n", 1)[0].strip()[:120] or service.name.get(lang)
        name = clean_name(" ".join(filter(None, [user.get("first_name"), user.get("last_name")])))
        requester = Person(name=name, telegram_user_id=user.get("id"), telegram_chat_id=chat_id)
        request_id = f"tg-{chat_id}-{dialog['started_update']}"
        event = RequestReceived(
            request_id=request_id, channel="telegram", service_id=service.id,
            requester=requester, subject=title, text=text, fields=fields,
            attachments=tuple(AttachmentRef.model_validate(a)
                              for a in dialog.get("attachments", [])),
            received_at=datetime.now(UTC), channel_ref=f"tg:{chat_id}",
            language=lang)

        async def accept(uow) -> None:
            await self.repo.requests.insert_one(
                {"_id": request_id, "idempotency_key": None, "channel": "telegram",
                 "service_id": service.id, "received_at": event.received_at,
                 "subject": title, "lang": lang,
                 "requester": requester.model_dump(mode="json")}, session=uow.session)
            await self.repo.dialogs.delete_one({"_id": chat_id}, session=uow.session)
            await uow.emit(event)

        try:
            await self.runtime.transact(accept)
        except DuplicateKeyError:
            await self.repo.dialogs.delete_one({"_id": chat_id})
            return
        await self.send(chat_id, t("created", lang, title=title))

    async def _reply(self, update_id: int, message: dict, reply_to: dict, lang: str) -> None:
        chat_id = message["chat"]["id"]
        key = f"tg:{chat_id}:{reply_to.get('message_id')}"
        thread = await self.repo.threads.find_one({"message_ids": key})
        if thread is None:
            REJECTED_INPUT.labels("intake", "telegram", "reply_unknown").inc()
            await self.send(chat_id, t("reply_unknown", lang))
            return
        files = await self._files(chat_id, message, lang, update_id)
        user = message.get("from") or {}
        name = clean_name(" ".join(filter(None, [user.get("first_name"), user.get("last_name")])))
        text = (message.get("text") or message.get("caption") or "").strip()
        event = ReplyReceived(
            reply_id=f"tg-{chat_id}-{update_id}", card_id=thread["_id"], channel="telegram",
            author=Person(name=name, telegram_user_id=user.get("id"), telegram_chat_id=chat_id),
            text=text or ("📎" if files else ""), attachments=tuple(files),
            received_at=datetime.now(UTC), channel_ref=f"tg:{chat_id}:{message['message_id']}",
            threading_reason="telegram_reply")

        async def work(uow) -> None:
            await uow.emit(event)

        await self.runtime.transact(work)
        await self.send(chat_id, t("reply_added", lang, number=thread.get("number", "")))

    async def _on_callback(self, update_id: int, query: dict) -> None:
        user = query.get("from") or {}
        lang = _lang(user)
        data = query.get("data") or ""
        chat_id = ((query.get("message") or {}).get("chat") or {}).get("id") or user.get("id")
        note = None
        if data.startswith("rate:"):
            note = await self._rate(data, chat_id, user, lang)
        elif data.startswith(("svc:", "opt:", "skip:")):
            note = await self._dialog_button(chat_id, data, user, lang)
            if note is None:
                await self._mark_chosen(query)
        else:
            note = t("stale_button", lang)
        if self.api is not None:
            with contextlib.suppress(TelegramError):
                await self.api.call("answerCallbackQuery", callback_query_id=query["id"],
                                    text=note)

    async def _mark_chosen(self, query: dict) -> None:
        """Show the choice in the question and drop its buttons (no second press)."""
        message = query.get("message") or {}
        pressed = next((b.get("text") for row in (message.get("reply_markup") or {})
                        .get("inline_keyboard", []) for b in row
                        if b.get("callback_data") == query.get("data")), None)
        if self.api is None or not message.get("message_id") or not message.get("text"):
            return
        text = message["text"] + (f"\n→ {pressed}" if pressed else "")
        with contextlib.suppress(TelegramError):
            await self.api.call("editMessageText", chat_id=message["chat"]["id"],
                                message_id=message["message_id"], text=text)

    async def _dialog_button(self, chat_id: int, data: str, user: dict, lang: str
                             ) -> str | None:
        dialog = await self._dialog(chat_id)
        kind, _, rest = data.partition(":")
        if kind == "svc":
            if dialog["state"] != "choose_service":
                return t("stale_button", lang)
            service = await self.repo.service(rest)
            if service is None or not service.active:
                return t("stale_button", lang)
            if await self._refused(chat_id, service, lang):
                return None
            dialog.update({"state": "describe", "service_id": service.id, "answers": {},
                           "skipped": [], "attachments": [], "user": user, "lang": lang,
                           "started_update": int(datetime.now(UTC).timestamp() * 1000)})
            await self._save(dialog)
            await self.send(chat_id, t("describe", lang, service=service.name.get(lang)))
            return None
        key, _, value = rest.partition(":")
        if dialog["state"] != "fields" or dialog.get("field") != key:
            return t("stale_button", lang)
        await self._answer(dialog, value, lang, user, skip=kind == "skip")
        return None

    async def _rate(self, data: str, chat_id: int, user: dict, lang: str) -> str:
        match = _RATE.match(data)
        thread = await self.repo.threads.find_one({"_id": match.group(1)}) if match else None
        requester = (thread or {}).get("requester") or {}
        if thread is None or requester.get("telegram_chat_id") != chat_id:
            # only the requester's own chat may rate a request
            REJECTED_INPUT.labels("intake", "telegram", "rating_refused").inc()
            return t("rate_refused", lang)
        event = RequestRated(card_id=thread["_id"], rating=int(match.group(2)),
                             rated_at=datetime.now(UTC), rated_by=f"telegram:{user.get('id')}")

        async def work(uow) -> None:
            await uow.emit(event)

        await self.runtime.transact(work)
        return t("rated", lang)


@router.post("/webhook")
async def webhook(request: Request) -> JSONResponse:
    """Telegram's webhook; refuses anything without the configured secret header."""
    bot: TelegramBot = request.app.state.telegram
    config = bot.config
    if config.mode != "webhook" or not config.token:
        raise NotFound("the Telegram webhook is not enabled")
    given = request.headers.get("x-telegram-bot-api-secret-token", "")
    if not config.webhook_secret or not hmac.compare_digest(given.encode(),
                                                            config.webhook_secret.encode()):
        REJECTED_INPUT.labels("intake", "telegram", "bad_webhook_secret").inc()
        raise Forbidden("wrong or missing X-Telegram-Bot-Api-Secret-Token")
    try:
        update = await request.json()
    except ValueError:
        REJECTED_INPUT.labels("intake", "telegram", "bad_json").inc()
        return JSONResponse({"ok": False, "error": "body is not JSON"}, status_code=400)
    if not isinstance(update, dict):
        return JSONResponse({"ok": False, "error": "an update is a JSON object"},
                            status_code=400)
    # an exception answers 500 and Telegram redelivers; a poison update is given up on
    await bot.handle_or_give_up(update)
    return JSONResponse({"ok": True})
