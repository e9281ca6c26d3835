"""The web channel's adapter: its routes (nothing runs in the background)."""

from __future__ import annotations

from collections.abc import Sequence

from desk_contracts.channels import API
from fastapi import APIRouter

from intake.channel import ChannelAdapter
from intake.web import requests


class WebChannel(ChannelAdapter):
    name = API

    def routers(self) -> Sequence[APIRouter]:
        return (requests.router,)
