"""Where each Telegram update goes: once per update_id, one chat at a time, to a command,
a step of the request dialog (intake.domain.dialog), a reply on a card, or a rating.

Every update is recorded by its `update_id` once handled, so a redelivered update does
nothing twice; dialog state is stored after each step, so it survives a restart.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime

from desk_contracts.channels import TELEGRAM
from desk_contracts.events import AttachmentRef, Person, ReplyReceived, RequestRated, clean_name
from desk_runtime.logging import get_logger
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.service import ServiceRuntime

from intake.application import (
    AccessRefused,
    InvalidFields,
    UnknownService,
    accept_request,
)
from intake.attachments import AttachmentStore, AttachmentTooLarge
from intake.domain import dialog as dialogs
from intake.domain.dialog import Dialog, Say, Step, Text
from intake.metrics import TELEGRAM_UPDATES
from intake.repository import IntakeRepository
from intake.telegram.transport import BotTransport, render

log = get_logger(__name__)
_RATE = re.compile(r"^rate:([0-9a-fA-F-]{1,64}):([1-5])$")
MAX_ATTEMPTS = 5


def _chat_of(update: dict) -> int:
    chat = ((update.get("message") or {}).get("chat") or
            ((update.get("callback_query") or {}).get("message") or {}).get("chat") or {})
    return int(chat.get("id") or 0)


def _full_name(user: dict) -> str | None:
    return clean_name(" ".join(filter(None, [user.get("first_name"), user.get("last_name")])))


class UpdateRouter:
    def __init__(self, runtime: ServiceRuntime, repo: IntakeRepository,
                 transport: BotTransport, attachments: AttachmentStore):
        self.runtime = runtime
        self.repo = repo
        self.transport = transport
        self.attachments = attachments
        self._locks: dict[int, asyncio.Lock] = {}

    # -- once per update --------------------------------------------------------------------

    async def handle_or_give_up(self, update: dict, max_attempts: int = MAX_ATTEMPTS) -> None:
        """Retry a failing update a few times, then record it as failed and move on, so
        one poison update cannot stop the bot."""
        try:
            await self.handle_update(update)
        except Exception as exc:
            update_id = update.get("update_id")
            attempts = await self.repo.update_failed(update_id, update, str(exc)[:500],
                                                     datetime.now(UTC))
            if attempts >= max_attempts:
                await self.repo.give_up_update(update_id)
                TELEGRAM_UPDATES.labels("any", "failed").inc()
                log.error("telegram.update_failed", update_id=update_id, error=str(exc))
                return
            raise

    async def handle_update(self, update: dict) -> None:
        """Handle one update once: a redelivered update_id is skipped."""
        update_id = update.get("update_id")
        if not isinstance(update_id, int):
            TELEGRAM_UPDATES.labels("invalid", "refused").inc()
            return
        if await self.repo.update_done(update_id):
            TELEGRAM_UPDATES.labels("any", "duplicate").inc()
            return
        async with self._locks.setdefault(_chat_of(update), asyncio.Lock()):
            if await self.repo.update_done(update_id):
                return
            if "message" in update:
                kind = "message"
                await self._on_message(update_id, update["message"])
            elif "callback_query" in update:
                kind = "callback"
                await self._on_callback(update_id, update["callback_query"])
            else:
                kind = "other"
            await self.repo.remember_update(update_id, datetime.now(UTC))
        TELEGRAM_UPDATES.labels(kind, "handled").inc()

    # -- messages ---------------------------------------------------------------------------

    async def _dialog(self, chat_id: int, lang: str) -> Dialog:
        # the user's current Telegram language is the one the bot answers in
        found = Dialog.from_doc(chat_id, await self.repo.dialog(chat_id))
        return replace(found, lang=lang)

    async def _on_message(self, update_id: int, message: dict) -> None:
        chat_id = message["chat"]["id"]
        if message["chat"].get("type") != "private":
            return
        user = message.get("from") or {}
        lang = dialogs.language_of(user)
        text = (message.get("text") or message.get("caption") or "").strip()
        command = text.split()[0].split("@")[0].lower() if text.startswith("/") else None
        dialog = await self._dialog(chat_id, lang)
        reply_to = message.get("reply_to_message")
        if command == "/start":
            await self._carry_out(chat_id, lang, dialogs.start(
                dialog, user, lang, await self.repo.active_services()))
        elif command == "/my":
            await self._my(chat_id, lang)
        elif command == "/cancel":
            await self._carry_out(chat_id, lang, dialogs.cancel(dialog))
        elif command == "/help":
            await self.transport.say(chat_id, lang, Say(Text("help")))
        elif reply_to and dialog.takes_replies:
            await self._reply(update_id, message, reply_to, lang)
        else:
            files = await self._files(chat_id, message, lang, update_id)
            service = await self.repo.service(dialog.service_id)
            await self._carry_out(chat_id, lang, dialogs.message(dialog, text, files, service))

    async def _my(self, chat_id: int, lang: str) -> None:
        lines = []
        threads = await self.repo.threads_of_chat(chat_id)
        # SD-9 before SD-10
        threads.sort(key=lambda th: int(re.sub(r"\D", "", th.get("number") or "") or 0))
        for th in threads:
            lines.append(f"{th['number']} — {th.get('title', '')} — {th.get('customer_status')}")
        for rq in await self.repo.requests_of_chat(chat_id):
            if await self.repo.thread_for_request(rq["_id"]) is None:
                lines.append(f"«{rq.get('subject', '')}» — {render(Text('my_pending'), lang)}")
        if not lines:
            await self.transport.say(chat_id, lang, Say(Text("my_none")))
            return
        await self.transport.send(chat_id, "\n".join([render(Text("my_header"), lang), *lines]))

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
        limit = self.attachments.max_bytes
        for n, (file_id, name, ctype, size) in enumerate(wanted):
            if size > limit:
                REJECTED_INPUT.labels("intake", TELEGRAM, "file_too_large").inc()
                await self.transport.say(chat_id, lang, Say(Text(
                    "file_too_large", {"size": size, "limit": limit})))
                continue
            data = await self.transport.download(file_id)
            try:
                refs.append(await self.attachments.store(
                    data, name, ctype, source=TELEGRAM, attachment_id=f"tg-{update_id}-{n}"))
            except AttachmentTooLarge:
                REJECTED_INPUT.labels("intake", TELEGRAM, "file_too_large").inc()
                await self.transport.say(chat_id, lang, Say(Text(
                    "file_too_large", {"size": len(data), "limit": limit})))
        return refs

    # -- the dialog -------------------------------------------------------------------------

    async def _carry_out(self, chat_id: int, lang: str, step: Step) -> Text | None:
        """Store what the step decided, say what it says, and hand the request in once the
        last question is answered; the note for a pressed button, if any."""
        note = step.note
        await self._apply(chat_id, lang, step)
        # answers the catalog refused are asked again; with none left to ask, handed in again
        while step.submit and step.dialog is not None:
            step = await self._submit(step.dialog)
            await self._apply(chat_id, lang, step)
        return note

    async def _apply(self, chat_id: int, lang: str, step: Step) -> None:
        if step.rejected:
            REJECTED_INPUT.labels("intake", TELEGRAM, step.rejected).inc()
        if step.dialog is None:
            await self.repo.drop_dialog(chat_id)
        elif step.save:
            await self.repo.save_dialog({**step.dialog.to_doc(), "updated_at": datetime.now(UTC)})
        for said in step.say:
            await self.transport.say(chat_id, lang, said)

    async def _submit(self, dialog: Dialog) -> Step:
        service = await self.repo.service(dialog.service_id)
        if service is None:
            return dialogs.next_question(dialog, None)
        draft = dialogs.draft(dialog, service, TELEGRAM, datetime.now(UTC))

        async def finished(uow) -> None:
            await self.repo.drop_dialog(dialog.chat_id, session=uow.session)

        try:
            # a dialog begun while the service was active may still finish
            accepted = await accept_request(self.runtime, draft, also=finished,
                                            allow_inactive=True)
        except AccessRefused:
            return dialogs.refused(dialog, service)
        except InvalidFields as exc:  # the catalog changed mid-dialog: ask again
            return dialogs.fields_rejected(dialog, exc.errors, exc.service)
        except UnknownService:
            return dialogs.next_question(dialog, None)
        if accepted.replayed:  # handed in before (a redelivered update): nothing more to say
            return Step(None)
        return dialogs.accepted(dialog, draft.subject)

    # -- buttons ----------------------------------------------------------------------------

    async def _on_callback(self, update_id: int, query: dict) -> None:
        user = query.get("from") or {}
        lang = dialogs.language_of(user)
        data = query.get("data") or ""
        chat_id = ((query.get("message") or {}).get("chat") or {}).get("id") or user.get("id")
        note: Text | None
        if data.startswith("rate:"):
            note = await self._rate(data, chat_id, user)
        elif data.startswith(("svc:", "opt:", "skip:")):
            note = await self._dialog_button(chat_id, data, user, lang)
            if note is None:
                await self.transport.mark_chosen(query)
        else:
            note = Text("stale_button")
        await self.transport.answer_callback(query, note, lang)

    async def _dialog_button(self, chat_id: int, data: str, user: dict, lang: str
                             ) -> Text | None:
        dialog = await self._dialog(chat_id, lang)
        kind, _, rest = data.partition(":")
        if kind == "svc":
            started = int(datetime.now(UTC).timestamp() * 1000)
            step = dialogs.choose_service(dialog, await self.repo.service(rest), user, lang,
                                          started)
        else:
            key, _, value = rest.partition(":")
            step = dialogs.option(dialog, key, value, await self.repo.service(dialog.service_id),
                                  skip=kind == "skip")
        return await self._carry_out(chat_id, lang, step)

    # -- replies and ratings on cards -------------------------------------------------------

    async def _reply(self, update_id: int, message: dict, reply_to: dict, lang: str) -> None:
        chat_id = message["chat"]["id"]
        key = f"tg:{chat_id}:{reply_to.get('message_id')}"
        thread = await self.repo.thread_for_message_ids([key])
        if thread is None:
            REJECTED_INPUT.labels("intake", TELEGRAM, "reply_unknown").inc()
            await self.transport.say(chat_id, lang, Say(Text("reply_unknown")))
            return
        files = await self._files(chat_id, message, lang, update_id)
        user = message.get("from") or {}
        text = (message.get("text") or message.get("caption") or "").strip()
        event = ReplyReceived(
            reply_id=f"tg-{chat_id}-{update_id}", card_id=thread["_id"], channel=TELEGRAM,
            author=Person(name=_full_name(user), telegram_user_id=user.get("id"),
                          telegram_chat_id=chat_id),
            text=text or ("📎" if files else ""), attachments=tuple(files),
            received_at=datetime.now(UTC), channel_ref=f"tg:{chat_id}:{message['message_id']}",
            threading_reason="telegram_reply")

        async def work(uow) -> None:
            await uow.emit(event)

        await self.runtime.transact(work)
        await self.transport.say(chat_id, lang, Say(Text(
            "reply_added", {"number": thread.get("number", "")})))

    async def _rate(self, data: str, chat_id: int, user: dict) -> Text:
        match = _RATE.match(data)
        thread = await self.repo.thread(match.group(1)) if match else None
        requester = (thread or {}).get("requester") or {}
        if thread is None or requester.get("telegram_chat_id") != chat_id:
            # only the requester's own chat may rate a request
            REJECTED_INPUT.labels("intake", TELEGRAM, "rating_refused").inc()
            return Text("rate_refused")
        event = RequestRated(card_id=thread["_id"], rating=int(match.group(2)),
                             rated_at=datetime.now(UTC),
                             rated_by=f"{TELEGRAM}:{user.get('id')}")

        async def work(uow) -> None:
            await uow.emit(event)

        await self.runtime.transact(work)
        return Text("rated")
