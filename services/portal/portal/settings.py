"""Portal's settings (env prefix PORTAL_)."""

from desk_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    http_port: int = 8000
