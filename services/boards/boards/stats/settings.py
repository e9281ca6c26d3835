"""Statistics settings (env prefix BOARDS_STATS_), read when the module is registered."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class StatsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOARDS_STATS_", extra="ignore")

    gauge_refresh_seconds: float = 15.0
    default_period_days: int = 30
    max_period_days: int = 400
