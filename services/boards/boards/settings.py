"""Boards' settings (env prefix BOARDS_)."""

from desk_runtime.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class BoardsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BOARDS_", extra="ignore")

    REQUIRED_IN_PRODUCTION = (*ServiceSettings.REQUIRED_IN_PRODUCTION, "sla_url")

    http_port: int = 8002
    card_prefix: str = "SD"
    demo_catalog: bool = False
    bootstrap_admin_token: str = ""
    # the agent workspace (boards.web): where the SLA records live, browser sessions
    sla_url: str = "http://127.0.0.1:8003"
    # the Bearer token sla's read endpoints take (SLA_READ_TOKEN): SLA records are not public
    sla_token: str = ""
    cookie_secure: bool = True
    session_hours: float = 12.0
    # agents' attachments are stored by intake (as the portal's are): its URL and the
    # secret shared with it for upload tokens (empty: uploading from the card page is off)
    intake_url: str = "http://127.0.0.1:8001"
    link_secret: str = ""
    max_attachment_bytes: int = 25 * 1024 * 1024
    # statistics (boards.stats): how often the open-requests gauge is recomputed, the
    # period a query covers when it names no `from`, and the longest period it may ask for
    stats_gauge_refresh_seconds: float = 15.0
    stats_default_period_days: int = 30
    stats_max_period_days: int = 400
    # automation (boards.automation): how often the clock looks for cards a timed rule
    # (time in a column, a schedule) is due for
    automation_timer_seconds: float = 5.0
    # knowledge base (boards.kb): the credential the portal presents to its help-centre API
    # (the same value as PORTAL_BOARDS_TOKEN; empty: the portal's help centre is off), and
    # where customers read articles (links an agent inserts into a reply point there)
    portal_token: str = ""
    portal_url: str = "http://127.0.0.1:8000"
    # the admin pages (boards.web.admin) change each service's configuration through that
    # service's own admin API with its admin token (empty: that area's pages say so)
    sla_admin_token: str = ""
    notify_url: str = "http://127.0.0.1:8004"
    notify_admin_token: str = ""
    # the portal's own address inside the deployment (portal_url is where customers go)
    portal_admin_url: str = "http://127.0.0.1:8000"
    portal_admin_token: str = ""
    intake_admin_token: str = ""  # intake's INTAKE_ADMIN_TOKEN (IMAP mailboxes), at intake_url
