"""Boards' settings (env prefix BOARDS_)."""

from desk_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class BoardsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BOARDS_", extra="ignore")

    http_port: int = 8002
    card_prefix: str = "SD"
    demo_catalog: bool = False
    bootstrap_admin_token: str = ""
