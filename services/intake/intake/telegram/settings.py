"""The Telegram channel's settings (INTAKE_TELEGRAM__TOKEN, INTAKE_TELEGRAM__MODE, ...)."""

from typing import Literal

from pydantic import BaseModel, Field


class TelegramConfig(BaseModel):
    """The account's bot. `mode=off` (the default) starts neither webhook handling nor polling."""

    token: str = ""
    api_base: str = "https://api.telegram.org"
    webhook_secret: str = ""
    mode: Literal["webhook", "polling", "off"] = "off"
    poll_timeout_seconds: int = Field(25, ge=0, le=50)
    # Where Telegram should POST updates in webhook mode; empty = set it up by hand.
    webhook_url: str = ""


class TelegramSettings(BaseModel):
    telegram: TelegramConfig = TelegramConfig()
