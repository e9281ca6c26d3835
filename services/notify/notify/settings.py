"""Notify's settings (env prefix NOTIFY_)."""

from desk_runtime.mail import SmtpConfig
from desk_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")
    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "reply_token_secret")

    http_port: int = 8004
    smtp: SmtpConfig = SmtpConfig()
    mail_from: str = "Service desk <desk@desk.localhost>"
    inbound_domain: str = "desk.localhost"
    reply_token_secret: str = "change-me"
    portal_url: str = "http://127.0.0.1:8000"
    max_attempts: int = 6
    retry_base_seconds: float = 2.0
    dispatch_poll_seconds: float = 0.5
