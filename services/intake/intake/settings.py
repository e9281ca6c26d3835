"""Intake's settings (env prefix INTAKE_; nested values with `__`, e.g. INTAKE_TELEGRAM__TOKEN).

Each channel brings its own settings class (intake.mail.settings, intake.telegram.settings);
this one composes them with what is intake's own.
"""

from desk_runtime.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from intake.mail.settings import MailSettings
from intake.telegram.settings import TelegramConfig, TelegramSettings


class IntakeSettings(ServiceSettings, MailSettings, TelegramSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore",
                                      env_nested_delimiter="__")
    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "reply_token_secret",
                              "link_secret", "inbound_domain", "public_url", "smtp_host")

    http_port: int = 8001
    link_secret: str = Field("change-me", description="signs attachment download links")
    admin_token: str = Field("", description="Bearer token for quarantine/mailbox admin API")
    portal_token: str = Field("", description="the portal's credential (Bearer) on the web "
                              "API: a caller presenting it vouches for the requester's "
                              "address; empty = no caller is trusted")
    max_attachment_bytes: int = 25 * 1024 * 1024


__all__ = ["IntakeSettings", "TelegramConfig"]
