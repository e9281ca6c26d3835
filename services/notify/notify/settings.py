"""Notify's settings (env prefix NOTIFY_)."""

from desk_runtime.mail import SmtpConfig
from desk_runtime.settings import ServiceSettings
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict


class TelegramConfig(BaseModel):
    """The bot intake owns; notify only sends with it (empty token: Telegram is off)."""

    token: str = ""
    api_base: str = "https://api.telegram.org"
    # Telegram's published limits: ~30 messages/s overall, 1 message/s to one chat.
    global_per_second: float = 30.0
    per_chat_per_second: float = 1.0
    timeout_seconds: float = 10.0


class SlackConfig(BaseModel):
    """Bot token for routes that post with `chat.postMessage` (webhook routes need none)."""

    bot_token: str = ""
    api_base: str = "https://slack.com/api"
    # Slack's published limit for incoming webhooks and chat.postMessage: ~1 message/s.
    per_target_per_second: float = 1.0
    timeout_seconds: float = 10.0


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore",
                                      env_nested_delimiter="__")
    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "reply_token_secret",
                              "link_secret", "portal_url", "inbound_domain", "smtp")

    http_port: int = 8004
    smtp: SmtpConfig = SmtpConfig()
    mail_from: str = "Service desk <desk@desk.localhost>"
    inbound_domain: str = "desk.localhost"
    reply_token_secret: str = "change-me"
    link_secret: str = "change-me"
    portal_url: str = "http://127.0.0.1:8000"
    boards_url: str = "http://127.0.0.1:8002"
    rating_link_days: int = 30
    max_attempts: int = 6
    # a graceful stop waits this long for sends in flight to finish and be recorded
    stop_grace_seconds: float = 20.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    dispatch_poll_seconds: float = 0.5
    # Deliveries a worker claims, sends and records together: a batch costs a few store
    # statements whatever its size, so the mail keeps pace under a burst; a process killed
    # mid-batch re-sends at most this many once their claims run out.
    dispatch_batch: int = Field(8, ge=1, le=100)
    # Several workers hide a slow SMTP relay's latency; on a store that serialises writes
    # (SecantusDB) more workers mostly contend (see docs/notify.md, benchmark).
    email_workers: int = 2
    telegram_workers: int = 2
    slack_workers: int = 2
    telegram: TelegramConfig = TelegramConfig()
    slack: SlackConfig = SlackConfig()
