"""Intake's settings (env prefix INTAKE_)."""

from desk_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")
    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "reply_token_secret")

    http_port: int = 8001
    inbound_domain: str = "desk.localhost"
    reply_token_secret: str = "change-me"
