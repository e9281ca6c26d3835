"""The demo desk `make run` loads: one support board, four services from the domain."""

from __future__ import annotations

from desk_contracts.catalog import ServiceDefinition

SUPPORT_BOARD = {
    "_id": "support",
    "name": "Support",
    "space": "Service desk",
    "columns": [
        {"id": "queue", "name": "Queue", "category": "queued", "wip_limit": None,
         "time_limit_minutes": 3},
        {"id": "in-progress", "name": "In progress", "category": "in_progress", "wip_limit": 10},
        {"id": "clarification", "name": "Needs clarification",
         "category": "waiting_for_customer", "wip_limit": None},
        {"id": "pause", "name": "Pause", "category": "paused", "wip_limit": None},
        {"id": "done", "name": "Done", "category": "done", "wip_limit": None},
    ],
    "lanes": [
        {"id": "l1", "name": "L1 support"},
        {"id": "l2", "name": "L2 support"},
        {"id": "legal", "name": "Legal"},
    ],
    "members": [],
}

DEMO_SERVICES: list[dict] = [
    {
        "id": "problem",
        "name": {"en": "Problem / bug", "ru": "Проблема / ошибка"},
        "description": {"en": "Something does not work as it should.",
                        "ru": "Что-то работает не так, как должно."},
        "group": {"en": "IT", "ru": "ИТ"},
        "target": {"board_id": "support", "column_id": "queue", "lane_id": "l1"},
        "fields": [
            {"key": "system", "label": {"en": "System", "ru": "Система"}, "type": "select",
             "required": True,
             "options": [{"value": "mail", "label": {"en": "Mail", "ru": "Почта"}},
                         {"value": "crm", "label": {"en": "CRM", "ru": "CRM"}},
                         {"value": "other", "label": {"en": "Other", "ru": "Другое"}}]},
            {"key": "system_other", "label": {"en": "Which system?", "ru": "Какая система?"},
             "type": "text", "required": True, "condition": {"field": "system", "in": ["other"]}},
            {"key": "impact", "label": {"en": "How many people are affected?",
                                        "ru": "Сколько людей затронуто?"},
             "type": "number", "required": False},
        ],
        "default_priority": "medium",
        "sla_policy": "standard",
        # Added after "We have received your request": it says what happens next.
        "auto_reply": {"en": "We usually answer within one business day.",
                       "ru": "Обычно мы отвечаем в течение одного рабочего дня."},
    },
    {
        "id": "access",
        "name": {"en": "Access request", "ru": "Запрос доступа"},
        "description": {"en": "Get access to a system or a folder.",
                        "ru": "Получить доступ к системе или папке."},
        "group": {"en": "IT", "ru": "ИТ"},
        "target": {"board_id": "support", "column_id": "queue", "lane_id": "l1"},
        "fields": [
            {"key": "resource", "label": {"en": "Resource", "ru": "Ресурс"}, "type": "text",
             "required": True},
            {"key": "until", "label": {"en": "Access until", "ru": "Доступ до"}, "type": "date"},
        ],
        "default_priority": "high",
        "sla_policy": "access",
    },
    {
        "id": "question",
        "name": {"en": "Question / consultation", "ru": "Вопрос / консультация"},
        "group": {"en": "General", "ru": "Общее"},
        "target": {"board_id": "support", "column_id": "queue", "lane_id": "l1"},
        "default_priority": "medium",
        "sla_policy": "consultation",
        "language": "ru",
    },
    {
        "id": "legal-document",
        "name": {"en": "Legal document request", "ru": "Запрос юридического документа"},
        "group": {"en": "Legal", "ru": "Юридический отдел"},
        "target": {"board_id": "support", "column_id": "queue", "lane_id": "legal"},
        "fields": [
            {"key": "document", "label": {"en": "Document", "ru": "Документ"}, "type": "select",
             "required": True,
             "options": [{"value": "contract", "label": {"en": "Contract", "ru": "Договор"}},
                         {"value": "nda", "label": {"en": "NDA", "ru": "NDA"}},
                         {"value": "power-of-attorney",
                          "label": {"en": "Power of attorney", "ru": "Доверенность"}}]},
            {"key": "counterparty", "label": {"en": "Counterparty", "ru": "Контрагент"},
             "type": "text", "required": True,
             "condition": {"field": "document", "in": ["contract", "nda"]}},
        ],
        "allow_due_date": True,
        "default_priority": "medium",
        "sla_policy": "standard",
    },
]


def demo_services() -> list[ServiceDefinition]:
    # New services answer customers in their own language (the admin API's default too).
    return [ServiceDefinition.model_validate({"answer_in_customer_language": True} | s)
            for s in DEMO_SERVICES]
