"""Portal's settings (env prefix PORTAL_; nested values with `__`, lists/dicts as JSON)."""

from desk_runtime.mail import SmtpConfig
from desk_runtime.settings import ServiceSettings
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict


class AddressRule(BaseModel):
    """A set of customers by exact domain (or `*.domain`) and exact address."""

    domains: list[str] = []
    addresses: list[str] = []


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore",
                                      env_nested_delimiter="__")

    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "link_secret",
                              "public_url", "intake_url", "smtp")

    http_port: int = 8000
    link_secret: str = Field("dev-link-secret", description="signs rating/attachment links; "
                             "the same value as NOTIFY_LINK_SECRET")
    smtp: SmtpConfig = SmtpConfig()
    mail_from: str = "Service desk <desk@localhost>"
    intake_url: str = "http://127.0.0.1:8001"
    # public_url (from ServiceSettings): links in mail; empty = the URL the request came to
    desk_name: str = "Service desk"

    # who may sign in at all (empty = everybody); a service's own `access` narrows further
    access: AddressRule = AddressRule()
    # customer groups a service's access rule may name: group → members
    groups: dict[str, AddressRule] = Field(default_factory=dict)
    # organisations whose members see each other's requests: org id → members
    organisations: dict[str, AddressRule] = Field(default_factory=dict)

    # sessions and cookies
    cookie_secure: bool = Field(True, description="False only for plain-http dev/tests")
    cookie_prefix: str = "desk"
    session_hours: float = 12.0
    login_code_minutes: float = 10.0
    login_code_max_guesses: int = 5

    # rate limits on code requests, per rolling hour
    codes_per_address_per_hour: int = 5
    codes_per_client_per_hour: int = 20
    trust_forwarded_for: bool = Field(False, description="client address from X-Forwarded-For "
                                      "(only behind a proxy that sets it)")

    widget_frame_ancestors: str = Field("'self'", description="CSP frame-ancestors of /widget")
    page_size: int = 50
    max_attachment_bytes: int = 25 * 1024 * 1024
