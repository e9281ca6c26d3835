"""Keeps intake's catalog copy and the map from requests to cards current.

The threads map (one document per card) holds what threading needs: the card's number,
its participants (the requester, those copied on the first mail and those who wrote on it as
participants: who may reply without being held and use the `[SD-42]` token) and every Message-ID we
received or sent for it (`message_ids`; the ones we sent also in `sent_ids`, so our own
mail coming back is recognised), plus Telegram message keys `tg:<chat>:<message id>`.
"""

from __future__ import annotations

from desk_contracts.events import CardCreated, CardMoved, CatalogServiceChanged, NotificationSent
from desk_runtime.service import ServiceRuntime
from desk_runtime.unit_of_work import UnitOfWork

from intake.repository import IntakeRepository
from intake.telegram.texts import t


def _card_fields(card) -> dict:
    return {"number": card.number, "request_id": card.request_id, "service_id": card.service_id,
            "channel": card.channel, "title": card.title,
            "customer_status": card.customer_status,
            "status_category": card.status_category.value,
            "requester": card.requester.model_dump(mode="json") if card.requester else None,
            "updated_at": card.updated_at}


def register(runtime: ServiceRuntime) -> None:
    @runtime.on("catalog", "catalog.service_changed")
    async def on_service(uow: UnitOfWork, event: CatalogServiceChanged) -> None:
        await IntakeRepository(uow.db).upsert_service(event.service, event.revision, uow.session)

    @runtime.on("threads", "card.created")
    async def on_card(uow: UnitOfWork, event: CardCreated) -> None:
        card = event.card
        repo = IntakeRepository(uow.db)
        add: dict = {}
        people: list[str] = []
        if card.requester and card.requester.email:
            people.append(card.requester.email.lower())
        request = None
        if card.request_id:
            request = await repo.requests.find_one({"_id": card.request_id},
                                                   session=uow.session)
            if request and request.get("message_id"):
                add["message_ids"] = request["message_id"]
            # those the first mail was copied to may answer on the request too
            people += (request or {}).get("cc") or []
        if people:
            add["participants"] = {"$each": people}
        chat_id = card.requester.telegram_chat_id if card.requester else None
        if card.channel == "telegram" and chat_id is not None:
            # The dialog promised the number: the bot sends it (and threads replies to it).
            lang = (request or {}).get("lang") or "en"
            await uow.db["telegram_outbox"].update_one(
                {"_id": f"created:{card.card_id}"},
                {"$setOnInsert": {"chat_id": chat_id, "card_id": card.card_id, "sent": False,
                                  "created_at": event.card.created_at,
                                  "text": t("numbered", lang, number=card.number,
                                            title=card.title)}},
                upsert=True, session=uow.session)
        update: dict = {"$set": _card_fields(card)}
        if add:
            update["$addToSet"] = add
        await repo.threads.update_one({"_id": card.card_id}, update, upsert=True,
                                      session=uow.session)

    @runtime.on("threads", "card.moved")
    async def on_moved(uow: UnitOfWork, event: CardMoved) -> None:
        card = event.card
        # only a newer snapshot replaces the status (redelivery may reorder)
        await IntakeRepository(uow.db).threads.update_one(
            {"_id": card.card_id, "$or": [{"version": {"$lt": card.version}},
                                          {"version": {"$exists": False}}]},
            {"$set": {**_card_fields(card), "version": card.version}},
            session=uow.session)

    @runtime.on("threads", "notification.sent")
    async def on_sent(uow: UnitOfWork, event: NotificationSent) -> None:
        if not event.card_id or not event.message_id:
            return
        key = event.message_id.strip().strip("<>")
        if event.channel == "telegram" and not key.startswith("tg:"):
            key = f"tg:{event.recipient}:{key}"
        await IntakeRepository(uow.db).threads.update_one(
            {"_id": event.card_id},
            {"$addToSet": {"message_ids": key, "sent_ids": key}},
            upsert=True, session=uow.session)
