"""The bot's configuration as admins set it (token, webhook or polling): stored by intake,
the token sealed, applied by every replica without a restart. The environment
(INTAKE_TELEGRAM__*) only seeds it until an admin saves it the first time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from desk_runtime.http import Invalid, require_admin
from desk_runtime.metrics import REJECTED_INPUT
from desk_runtime.secretbox import SecretBox, SecretBoxError
from desk_runtime.web import new_token
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from desk_contracts.channels import TELEGRAM
from intake.repository import IntakeRepository
from intake.telegram.client import BotApi, TelegramError
from intake.telegram.settings import TelegramConfig

router = APIRouter(prefix="/v1/telegram", tags=["admin"], dependencies=[Depends(require_admin)])
# what Bot API tokens look like: "<bot id>:<35 characters>"
TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")
TEST_TIMEOUT_SECONDS = 10.0


def _box(settings: Any) -> SecretBox:
    return SecretBox(settings.link_secret, "telegram")


def effective(env: TelegramConfig, stored: dict[str, Any] | None, box: SecretBox
              ) -> TelegramConfig:
    """The bot as stored, else as the environment seeded it (the API base stays the
    operator's setting: it is where this deployment reaches Telegram)."""
    if not stored:
        return env
    fields: dict[str, Any] = {"mode": stored.get("mode", env.mode),
                              "webhook_url": stored.get("webhook_url", "")}
    for name in ("token", "webhook_secret"):
        sealed = stored.get(name)
        try:
            fields[name] = box.open(sealed) if sealed else getattr(env, name)
        except SecretBoxError:  # the link secret changed: the stored one is unusable
            fields[name] = ""
    return env.model_copy(update=fields)


def hint(token: str) -> str | None:
    """Enough of a token to recognise it, never enough to use it."""
    if not token:
        return None
    bot_id, _, secret = token.partition(":")
    return f"{bot_id}:…{secret[-4:]}" if secret else f"…{token[-4:]}"


def public(config: TelegramConfig, stored: dict[str, Any] | None) -> dict[str, Any]:
    updated = (stored or {}).get("updated_at")
    return {"mode": config.mode, "token_hint": hint(config.token),
            "token_set": bool(config.token), "webhook_url": config.webhook_url,
            "webhook_secret_set": bool(config.webhook_secret), "api_base": config.api_base,
            "source": "stored" if stored else "environment",
            "revision": (stored or {}).get("revision", 0),
            "updated_at": updated.astimezone(UTC).isoformat() if updated else None}


class BotChange(BaseModel):
    mode: Literal["webhook", "polling", "off"]
    token: str | None = Field(None, max_length=200,
                              description="empty or left out: keep the stored token")
    webhook_url: str = Field("", max_length=2000)


def _refuse(fields: dict[str, str]) -> Invalid:
    REJECTED_INPUT.labels("intake", "admin", "invalid_telegram_bot").inc()
    return Invalid("; ".join(f"{k}: {v}" for k, v in fields.items()),
                   details={"fields": fields})


def _channel(request: Request):
    return request.app.state.channels[TELEGRAM]


@router.get("/bot")
async def get_bot(request: Request) -> dict:
    repo = IntakeRepository(request.app.state.runtime.db)
    stored = await repo.telegram_bot()
    env = request.app.state.settings.telegram
    return public(effective(env, stored, _box(request.app.state.settings)), stored)


@router.put("/bot")
async def put_bot(body: BotChange, request: Request) -> dict:
    """Set the bot: its token (kept sealed, never answered back), webhook or polling.
    This replica applies it at once, the others within seconds."""
    settings = request.app.state.settings
    repo = IntakeRepository(request.app.state.runtime.db)
    box = _box(settings)
    stored = await repo.telegram_bot()
    current = effective(settings.telegram, stored, box)
    token = (body.token or "").strip() or current.token
    url = body.webhook_url.strip()
    bad: dict[str, str] = {}
    if body.token and not TOKEN.match(token):
        bad["token"] = "a bot token looks like 123456789:AA… (from @BotFather)"
    if body.mode != "off" and not token:
        bad["token"] = "a bot needs its token"
    if body.mode == "webhook" and not url:
        bad["webhook_url"] = "webhook mode needs the URL Telegram posts updates to"
    elif url and not url.startswith("https://"):
        bad["webhook_url"] = "Telegram posts updates only to an https:// URL"
    if bad:
        raise _refuse(bad)
    # the webhook endpoint refuses updates without the secret: one is made when missing
    secret = current.webhook_secret or new_token(24)
    saved = await repo.save_telegram_bot({
        "mode": body.mode, "token": box.seal(token) if token else None,
        "webhook_url": url, "webhook_secret": box.seal(secret),
        "updated_at": datetime.now(UTC)})
    config = effective(settings.telegram, saved, box)
    await _channel(request).apply(config, saved["revision"])
    return public(config, saved)


class BotTest(BaseModel):
    token: str | None = Field(None, max_length=200,
                              description="a token to try before saving it; else the stored")


@router.post("/bot/test")
async def test_bot(request: Request, body: BotTest | None = None) -> dict:
    """Ask Telegram who the bot is (getMe) on the configured API base: the token works
    and Telegram answers from here."""
    settings = request.app.state.settings
    stored = await IntakeRepository(request.app.state.runtime.db).telegram_bot()
    config = effective(settings.telegram, stored, _box(settings))
    token = ((body.token if body else None) or "").strip() or config.token
    if not token:
        raise _refuse({"token": "no token to test"})
    api = BotApi(token, config.api_base, max_retries=0)
    api.http.timeout = TEST_TIMEOUT_SECONDS
    try:
        me = await api.call("getMe")
    except TelegramError as exc:
        return {"ok": False, "api_base": config.api_base,
                "error": f"{exc.code} {exc.description}"}
    except Exception as exc:  # noqa: BLE001 (unreachable, TLS, DNS: said as it is)
        return {"ok": False, "api_base": config.api_base,
                "error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        await api.close()
    return {"ok": True, "api_base": config.api_base,
            "bot": {"id": me.get("id"), "username": me.get("username"),
                    "first_name": me.get("first_name")}}
