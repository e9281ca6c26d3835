"""SLA's settings (env prefix SLA_)."""

from desk_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    http_port: int = 8003
    warn_share: float = 0.8
    scheduler_poll_seconds: float = 0.5
    lease_seconds: float = 15.0
    demo_policies: bool = True
