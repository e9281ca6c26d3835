"""Portal's settings (env prefix PORTAL_; nested values with `__`, lists/dicts as JSON)."""

from ipaddress import ip_network
from typing import Literal

from desk_runtime.mail import SmtpConfig
from desk_runtime.sessions import PORTAL_COOKIE_PREFIX
from desk_runtime.settings import ServiceSettings
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict


class AddressRule(BaseModel):
    """A set of customers by exact domain (or `*.domain`) and exact address."""

    domains: list[str] = []
    addresses: list[str] = []


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore",
                                      env_nested_delimiter="__")

    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "link_secret",
                              "public_url", "intake_url", "smtp", "intake_token")

    # Anything but an explicit `development` is production: a hand-written deployment that
    # forgets this setting gets the strict checks, not the laptop defaults.
    env: Literal["production", "development"] = "production"

    http_port: int = 8000
    link_secret: str = Field("dev-link-secret", description="signs rating/attachment links; "
                             "the same value as NOTIFY_LINK_SECRET")
    smtp: SmtpConfig = SmtpConfig()
    mail_from: str = "Service desk <desk@localhost>"
    intake_url: str = "http://127.0.0.1:8001"
    intake_token: str = Field("", description="the credential the portal presents to intake "
                              "(the same value as INTAKE_PORTAL_TOKEN)")
    # the help centre reads boards' knowledge base through its API (boards owns the store)
    boards_url: str = "http://127.0.0.1:8002"
    boards_token: str = Field("", description="the credential the portal presents to boards' "
                              "knowledge-base API (the same value as BOARDS_PORTAL_TOKEN; "
                              "empty: the help centre is off)")
    # public_url (from ServiceSettings): the only base of links in mail. Required in
    # production; in development an empty one means http://<http_host>:<http_port>.
    desk_name: str = "Service desk"

    # Who may sign in at all (empty = everybody) and the customer groups a service's access
    # rule may name. Both only seed the stored configuration at the first start; after that
    # the admin API (/v1/access) changes them.
    access: AddressRule = AddressRule()
    groups: dict[str, AddressRule] = Field(default_factory=dict)
    # organisations whose members see each other's requests: org id → members
    organisations: dict[str, AddressRule] = Field(default_factory=dict)

    # sessions and cookies
    cookie_secure: bool = Field(True, description="False only for plain-http dev/tests")
    cookie_prefix: str = PORTAL_COOKIE_PREFIX  # not the workspace's: they may share a host
    session_hours: float = 12.0
    login_code_minutes: float = 10.0
    login_code_max_guesses: int = 5

    # Rate limits on code requests, per rolling hour; only answered requests count (see
    # docs/portal.md, "Rate limits"). A browser that signed in with the address before
    # (its device cookie) has its own allowance, untouched by floods from elsewhere.
    codes_per_address_per_client_per_hour: int = 5
    codes_per_client_per_hour: int = 20
    codes_per_address_per_hour: int = 30
    codes_per_device_per_hour: int = 5
    device_days: int = 180
    # Proxies whose X-Forwarded-For/-Proto/-Host are believed (addresses or networks, e.g.
    # ["10.0.0.0/8"]); from anybody else those headers are ignored.
    trusted_proxies: list[str] = []

    widget_frame_ancestors: str = Field("'self'", description="CSP frame-ancestors of /widget")
    page_size: int = 50
    max_attachment_bytes: int = 25 * 1024 * 1024
    # all files of one form together (a request, a reply, a follow-up)
    max_form_bytes: int = 25 * 1024 * 1024

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ip_network(entry, strict=False)  # raises on anything that is not one
        return value

    @model_validator(mode="after")
    def _production_needs_its_address(self) -> "PortalSettings":
        if self.env == "production" and not self.public_url.strip():
            raise ValueError("PORTAL_PUBLIC_URL is required in production: sign-in links in "
                             "mail are built from it alone (PORTAL_ENV=development allows "
                             "http://<PORTAL_HTTP_HOST>:<PORTAL_HTTP_PORT> on a laptop)")
        return self

    def public_base(self) -> str:
        """Where customers reach the portal: configuration only, never a request's headers."""
        if self.public_url.strip():
            return self.public_url.strip().rstrip("/")
        return f"http://{self.http_host}:{self.http_port}"
