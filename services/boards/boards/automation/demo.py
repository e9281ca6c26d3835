"""The demo desk's automation: the four stories of our users, ready to try after `make run`.

- Hopper IT: an IT request's category gives the card its type, priority, SLA policy and
  responsible agent (access: high priority, 40 minutes to first response), and access
  requests get a prepared answer.
- Yoga Academy: an onboarding request runs a chain of subtasks on the HR board, each
  started when the one before is done (HR database, NDA, contract).
- ATI.SU: a new hire moved to "Offer accepted" gets a child card per department (IT,
  finance); when all are done the hire moves to "Onboarded".
- ActiveCloud: every proposed idea gets the validation checklist.
"""

from __future__ import annotations

from typing import Any

from desk_contracts.catalog import ServiceDefinition

_COLUMNS = [{"id": "new", "name": "New", "category": "queued", "wip_limit": None},
            {"id": "doing", "name": "In progress", "category": "in_progress",
             "wip_limit": None},
            {"id": "done", "name": "Done", "category": "done", "wip_limit": None}]
_TASK = {"id": "task", "name": {"en": "Task", "ru": "Задача"}, "color": "#6a1b9a",
         "customer_request": False, "fields": {}, "sla_policy": None}

BOARDS: list[dict[str, Any]] = [
    {"_id": "it", "name": "IT desk", "space": "Hopper IT", "members": [],
     "columns": _COLUMNS, "lanes": [{"id": "main", "name": "Requests"},
                                    {"id": "urgent", "name": "Urgent"}],
     "card_types": [
         {"id": "access", "name": {"en": "Access", "ru": "Доступ"}, "color": "#c62828",
          "customer_request": True, "fields": {}, "sla_policy": None},
         {"id": "question", "name": {"en": "Question", "ru": "Вопрос"}, "color": "#1565c0",
          "customer_request": True, "fields": {}, "sla_policy": None},
         {"id": "improvement", "name": {"en": "Improvement", "ru": "Доработка"},
          "color": "#2e7d32", "customer_request": True, "fields": {}, "sla_policy": None},
         _TASK]},
    {"_id": "hr", "name": "HR", "space": "People", "members": [],
     "columns": [_COLUMNS[0], _COLUMNS[1],
                 {"id": "offer-accepted", "name": "Offer accepted",
                  "category": "in_progress", "wip_limit": None},
                 {"id": "onboarded", "name": "Onboarded", "category": "done",
                  "wip_limit": None},
                 _COLUMNS[2]],
     "lanes": [{"id": "main", "name": "People"}]},
    {"_id": "finance", "name": "Finance", "space": "People", "members": [],
     "columns": _COLUMNS, "lanes": [{"id": "main", "name": "Finance"}]},
    {"_id": "product", "name": "Product ideas", "space": "ActiveCloud", "members": [],
     "columns": _COLUMNS, "lanes": [{"id": "main", "name": "Ideas"}]},
]

AGENTS: list[dict[str, Any]] = [
    {"_id": "it-duty", "name": "IT duty engineer", "email": "it-duty@desk.example",
     "role": "agent", "boards": ["it"], "active": True, "token_hashes": [], "language": "en"},
    {"_id": "it-lead", "name": "IT lead", "email": "it-lead@desk.example", "role": "agent",
     "boards": ["it"], "active": True, "token_hashes": [], "language": "en"},
    {"_id": "hr-officer", "name": "HR officer", "email": "hr@desk.example", "role": "agent",
     "boards": ["hr"], "active": True, "token_hashes": [], "language": "en"},
    {"_id": "accountant", "name": "Accountant", "email": "finance@desk.example",
     "role": "agent", "boards": ["finance"], "active": True, "token_hashes": [],
     "language": "en"},
]

_CATEGORY = {"en": "Category", "ru": "Категория"}
SERVICES: list[dict[str, Any]] = [
    {"id": "it-request", "name": {"en": "IT request", "ru": "Запрос в ИТ"},
     "group": {"en": "IT", "ru": "ИТ"},
     "target": {"board_id": "it", "column_id": "new", "lane_id": "main"},
     "card_type": "question", "default_priority": "medium", "sla_policy": "consultation",
     "fields": [
         {"key": "category", "label": _CATEGORY, "type": "select", "required": True,
          "options": [{"value": "access", "label": {"en": "Access", "ru": "Доступ"}},
                      {"value": "question", "label": {"en": "Question / consultation",
                                                      "ru": "Вопрос / консультация"}},
                      {"value": "improvement", "label": {"en": "Improvement",
                                                         "ru": "Доработка"}}]},
         {"key": "system", "label": {"en": "System", "ru": "Система"}, "type": "select",
          "required": True, "condition": {"field": "category", "in": ["access"]},
          "options": [{"value": "mail", "label": {"en": "Mail", "ru": "Почта"}},
                      {"value": "crm", "label": {"en": "CRM", "ru": "CRM"}},
                      {"value": "vpn", "label": {"en": "VPN", "ru": "VPN"}}]},
         {"key": "crm_role", "label": {"en": "CRM role", "ru": "Роль в CRM"},
          "type": "select", "condition": {"field": "system", "in": ["crm"]},
          "options": [{"value": "read", "label": {"en": "Read", "ru": "Чтение"}},
                      {"value": "admin", "label": {"en": "Administrator",
                                                   "ru": "Администратор"}}]}]},
    {"id": "hr-request", "name": {"en": "HR request", "ru": "Запрос в HR"},
     "group": {"en": "HR", "ru": "HR"},
     "target": {"board_id": "hr", "column_id": "new", "lane_id": "main"},
     "default_priority": "medium",
     "fields": [
         {"key": "kind", "label": _CATEGORY, "type": "select", "required": True,
          "options": [{"value": v, "label": {"en": en, "ru": ru}} for v, en, ru in (
              ("recruitment", "Recruitment", "Подбор"),
              ("onboarding", "Onboarding", "Адаптация"),
              ("new-hire", "New hire (offer sent)", "Новый сотрудник (оффер)"),
              ("leave", "Leave", "Отпуск"),
              ("invoice", "Paying an invoice", "Оплата счёта"),
              ("document", "Drafting a document", "Подготовка документа"))]}]},
    {"id": "idea", "name": {"en": "Product idea", "ru": "Идея для продукта"},
     "group": {"en": "Product", "ru": "Продукт"},
     "target": {"board_id": "product", "column_id": "new", "lane_id": "main"},
     "default_priority": "low", "sla_policy": "standard"},
]

CATEGORIES: list[dict[str, Any]] = [
    {"id": "it-access", "service_id": "it-request", "field": "category", "value": "access",
     "name": "Access", "card_type": "access", "priority": "high", "sla_policy": "access",
     "assignment": {"kind": "fixed", "agents": ["it-duty"]}},
    {"id": "it-access-crm", "service_id": "it-request", "parent_id": "it-access",
     "field": "system", "value": "crm", "name": "CRM"},
    {"id": "it-access-crm-admin", "service_id": "it-request", "parent_id": "it-access-crm",
     "field": "crm_role", "value": "admin", "name": "CRM administrator",
     "priority": "critical", "board_id": "it", "column_id": "new", "lane_id": "urgent",
     "assignment": {"kind": "fixed", "agents": ["it-lead"]}},
    {"id": "it-question", "service_id": "it-request", "field": "category",
     "value": "question", "name": "Question / consultation", "card_type": "question",
     "priority": "medium", "sla_policy": "consultation",
     "assignment": {"kind": "round_robin", "agents": ["it-duty", "it-lead"]}},
    {"id": "it-improvement", "service_id": "it-request", "field": "category",
     "value": "improvement", "name": "Improvement", "card_type": "improvement",
     "priority": "low", "sla_policy": "standard",
     "assignment": {"kind": "fixed", "agents": ["it-lead"]}},
    {"id": "hr-onboarding", "service_id": "hr-request", "field": "kind",
     "value": "onboarding", "name": "Onboarding"},
    {"id": "hr-new-hire", "service_id": "hr-request", "field": "kind", "value": "new-hire",
     "name": "New hire", "assignment": {"kind": "fixed", "agents": ["hr-officer"]}},
]

CHECKLISTS: list[dict[str, Any]] = [
    {"id": "idea-validation", "name": "Idea validation",
     "items": ["Does it fit the product roadmap?", "Who asked for it besides this customer?",
               "Rough effort estimate", "Decision written on the card"]},
    {"id": "nda-signing", "name": "NDA signing",
     "items": ["NDA sent", "NDA signed", "Scan stored"]},
    {"id": "workplace", "name": "Workplace",
     "items": ["Laptop", "Mail account", "VPN access"]},
]

RULES: list[dict[str, Any]] = [
    {"id": "hopper-access-answer", "name": "Access request: prepared answer",
     "board_id": "it", "trigger": {"type": "card_created"},
     "conditions": [{"attribute": "category", "values": ["it-access"]}],
     "actions": [{"type": "reply", "text": (
         "We have your access request. Access is usually granted within 40 minutes; "
         "we will write here as soon as it is done.")}]},
    {"id": "ati-departments", "name": "Accepted offer: a card per department",
     "board_id": "hr", "trigger": {"type": "card_moved", "to_column": "offer-accepted"},
     "conditions": [{"attribute": "category", "values": ["hr-new-hire"]}],
     "actions": [{"type": "create_children", "children": [
         {"board_id": "it", "title": "Workplace for {title}",
          "checklist_template_id": "workplace", "due_in_days": 3,
          "assignment": {"kind": "fixed", "agents": ["it-duty"]}},
         {"board_id": "finance", "title": "Payroll and contract for {title}",
          "due_in_days": 5, "assignment": {"kind": "fixed", "agents": ["accountant"]}}]},
         {"type": "note", "text": "IT and finance have their cards; the hire moves to "
                                  "Onboarded when both are done."}]},
    *[{"id": f"ati-{board}-done", "name": f"{name} card done: the hire is onboarded when "
                                         "all departments are",
       "board_id": board, "trigger": {"type": "card_moved", "to_category": "done"},
       "conditions": [{"attribute": "kind", "values": ["task"]}],
       "actions": [{"type": "move_parent_when_children_done", "column_id": "onboarded"}]}
      for board, name in (("it", "IT"), ("finance", "Finance"))],
    {"id": "activecloud-idea-checklist", "name": "Ideas get the validation checklist",
     "board_id": "product", "trigger": {"type": "card_created"},
     "conditions": [{"attribute": "service", "values": ["idea"]}],
     "actions": [{"type": "add_checklist", "checklist_template_id": "idea-validation"}]},
]

REQUEST_TEMPLATES: list[dict[str, Any]] = [
    {"id": "yoga-onboarding", "name": "Onboarding", "service_id": "hr-request",
     "category_id": "hr-onboarding", "done_column_id": "done",
     "steps": [
         {"board_id": "hr", "title": "Enter {title} into the HR database", "due_in_days": 1,
          "assignment": {"kind": "fixed", "agents": ["hr-officer"]}},
         {"board_id": "hr", "title": "Sign the NDA: {title}", "due_in_days": 2,
          "checklist_template_id": "nda-signing",
          "assignment": {"kind": "fixed", "agents": ["hr-officer"]}},
         {"board_id": "hr", "title": "Sign the employment contract: {title}",
          "due_in_days": 3, "assignment": {"kind": "fixed", "agents": ["hr-officer"]}}]},
]


def services() -> list[ServiceDefinition]:
    return [ServiceDefinition.model_validate({"answer_in_customer_language": True} | s)
            for s in SERVICES]


async def load(runtime) -> None:
    """Store what is missing of the demo automation (boards, agents, services, then the
    definitions, each checked as the admin API checks it)."""
    from datetime import UTC, datetime

    from boards.application.catalog import publish_service
    from boards.automation import domain
    from boards.automation.repository import AutomationRepository
    from boards.repository import Repositories

    repos, auto = Repositories.of(runtime.db), AutomationRepository(runtime.db)
    for board in BOARDS:
        if await repos.catalog.board(board["_id"]) is None:
            await repos.catalog.save_board(dict(board))
    for agent in AGENTS:
        if not await repos.agents.agent_exists(agent["_id"]):
            await repos.agents.add_agent(dict(agent))
    for service in services():
        if await repos.catalog.service(service.id) is None:
            await runtime.transact(lambda uow, s=service: publish_service(uow, s))
    boards = {b["_id"]: b for b in await repos.catalog.list_boards()}
    known = {s.id: s for s, _ in await repos.catalog.list_services()}
    agents = {a["_id"] for a in await repos.agents.all_agents()}
    stored = {c["_id"]: c for c in await auto.all("category")}
    for doc in CATEGORIES:
        if doc["id"] not in stored:
            parent = stored.get(doc.get("parent_id")) if doc.get("parent_id") else None
            level = 0 if parent is None else (1 if not parent.get("parent_id") else 2)
            kept = domain.validate_category(doc, service=known.get(doc["service_id"]),
                                            parent=parent, parent_level=level, boards=boards)
            await auto.save("category", kept)
            stored[kept["_id"]] = kept
    for doc in CHECKLISTS:
        if await auto.one("checklist", doc["id"]) is None:
            await auto.save("checklist", domain.validate_checklist_template(doc))
    checklists = {c["_id"] for c in await auto.all("checklist")}
    for doc in RULES:
        if await auto.one("rule", doc["id"]) is None:
            kept = domain.validate_rule(doc, boards=boards, services=set(known),
                                        categories=set(stored), checklists=checklists,
                                        agents=agents, canned=set())
            await auto.save_rule(kept, by="demo", at=datetime.now(UTC))
    for doc in REQUEST_TEMPLATES:
        if await auto.one("request_template", doc["id"]) is None:
            await auto.save("request_template", domain.validate_request_template(
                doc, services=set(known), categories=set(stored), boards=boards,
                agents=agents, checklists=checklists))
