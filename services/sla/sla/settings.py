"""SLA's settings (env prefix SLA_)."""

from desk_runtime.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore",
                                      env_nested_delimiter="__")

    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "admin_token")

    http_port: int = 8003
    read_token: str = Field("", description="Bearer token for the read endpoints (card SLA "
                            "records, policies, calendars); boards' workspace presents it as "
                            "BOARDS_SLA_TOKEN. The admin token reads too; neither set = closed")
    warn_share: float = Field(0.8, gt=0, lt=1,
                              description="share of a target after which a warning is raised")
    default_policy: str = Field("standard", description="for services that name no policy")
    scheduler: bool = Field(True, description="run the due-signal scheduler in this process")
    scheduler_poll_seconds: float = 0.5
    # the longest the scheduler sleeps with nothing due (a local card event wakes it)
    scheduler_idle_max_seconds: float = 15.0
    lease_seconds: float = 15.0
    fire_concurrency: int = Field(4, ge=1, description="due records fired at once per replica")
    gauge_refresh_seconds: float = 30.0
    demo_policies: bool = Field(True, description="seed the demo policies and calendars "
                                "when they are missing")
