"""The web channel: the web-form / integration API (`POST /v1/requests`), the portal's way in."""
