"""A request's category decides where its card goes and what it carries: boards' card
creation asks here, so every channel's requests are routed by the same categories."""

from __future__ import annotations

from desk_contracts.catalog import ServiceDefinition
from desk_contracts.events import RequestReceived
from desk_runtime.unit_of_work import UnitOfWork

from boards.automation import domain
from boards.automation.domain import Routing
from boards.automation.repository import AutomationRepository
from boards.domain.card import Card


async def route_request(uow: UnitOfWork, service: ServiceDefinition, request: RequestReceived
                        ) -> tuple[ServiceDefinition, Routing | None]:
    """The service as this request's category shapes it (target, type, priority, SLA
    policy, assignment), and the category; the service itself when none matches."""
    categories = [domain.Category.from_document(d)
                  for d in await AutomationRepository(uow.db).all("category")
                  if d["service_id"] == service.id]
    routing = domain.match_category(categories, service.id, request.fields)
    return domain.routed_service(service, routing), routing


def stamp(card: Card, routing: Routing | None, request: RequestReceived) -> None:
    """What a category writes on the new card itself: which category it is in (rules'
    conditions read it), its SLA policy, and its language when the channel named none."""
    if routing is None:
        return
    card.extra["category_id"] = routing.category_id
    card.extra["category_path"] = list(routing.path)
    card.extra["category_names"] = list(routing.names)
    if routing.settings.get("sla_policy"):
        card.sla_policy = routing.settings["sla_policy"]
    if routing.settings.get("language") and not request.language:
        card.language = routing.settings["language"]
