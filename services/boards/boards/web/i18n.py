"""The workspace's UI text in English and Russian, and how a request picks its language.

Order: `?lang=` (the switcher, remembered in a cookie), the `desk_lang` cookie, then
the browser's Accept-Language; English otherwise.
"""

from __future__ import annotations

from fastapi import Request

LANGS = ("en", "ru")
LANG_COOKIE = "desk_lang"

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "app": "Service desk", "board": "Board", "my_cards": "My cards", "new_card": "New request",
        "admin": "Admin", "stats": "Statistics", "sign_out": "Sign out", "sign_in": "Sign in",
        "token": "Agent API token", "token_help": "Your administrator gave you this token.",
        "sign_in_failed": "The token was not accepted.", "language": "Language",
        "filters": "Filters", "service": "Service", "priority": "Priority", "sla": "SLA",
        "assignee": "Assignee", "search": "Search", "apply": "Apply", "reset": "Reset",
        "any": "any", "me": "me", "nobody": "nobody", "warning": "warning", "breached": "breached",
        "low": "low", "medium": "medium", "high": "high", "critical": "critical",
        "collapse_lane": "Collapse lane", "expand_lane": "Expand lane", "cards": "cards", "card_one": "card", "card_few": "cards", "card_many": "cards",
        "move_to": "Move to…", "move": "Move", "cancel": "Cancel", "column": "Column",
        "lane": "Lane", "moved": "Moved {number} to {column}",
        "conflict": "Conflict: {number} was changed by someone else meanwhile. The board shows "
                    "its current state; try again.",
        "wip": "Refused: {message}", "error": "Error: {message}",
        "live_change": "{number} changed", "live_new": "New card {number}",
        "new_reply": "New customer reply", "unassigned": "unassigned",
        "left": "{t} left", "overdue": "overdue {t}", "in_column": "in column {t}",
        "stale": "over the column's {m} min limit", "sla_ok": "SLA on track",
        "sla_warning": "SLA warning", "sla_breached": "SLA breached",
        "live_on": "Live updates on", "live_off": "Live updates reconnecting…",
        "fields": "Fields", "customer_sees": "customer sees", "internal_only": "agents only",
        "conversation": "Conversation", "public_reply": "Public reply (customer sees it)",
        "internal_note": "Internal note (agents only)", "send": "Send", "reply_kind": "Reply as",
        "canned": "Canned response", "none": "none", "preview": "Preview", "insert": "Insert",
        "attachments": "Attachments", "checklist": "Checklist", "add_item": "Add item",
        "links": "Links", "parent": "Parent", "child": "Child", "add_child": "Add child card",
        "history": "History", "sla_record": "SLA record", "target": "Target", "state": "State",
        "deadline": "Deadline", "spent": "Spent", "pauses": "Pauses", "from": "From", "to": "To",
        "cause": "Cause", "sla_unavailable": "The SLA record is not available right now.",
        "mark_read": "Mark as read", "requester": "Requester", "number": "Number",
        "status": "Status", "created": "Created", "title": "Title", "text": "Text",
        "public": "public", "internal": "internal", "by": "by", "save": "Save",
        "saved": "Saved", "create": "Create", "customer_email": "Customer e-mail",
        "customer_name": "Customer name", "lookup_hint": "Type to find earlier requesters",
        "created_card": "Created {number}", "services": "Services", "boards": "Boards",
        "agents": "Agents", "id": "Id", "name_en": "Name (English)", "name_ru": "Name (Russian)",
        "target_board": "Target board", "target_column": "Target column",
        "target_lane": "Target lane", "access_domains": "Allowed e-mail domains (comma-separated)",
        "access_addresses": "Allowed addresses (comma-separated)",
        "sla_policy": "SLA policy", "reply_default": "Default reply kind",
        "notify_on": "Notify the customer when the request enters",
        "assignment": "Assignment rule", "assign_agents": "Agents (comma-separated ids)",
        "status_names": "Customer-facing status names", "form_fields": "Form fields",
        "add_field": "Add field", "remove": "Remove", "key": "Key", "label_en": "Label (en)",
        "label_ru": "Label (ru)", "type": "Type", "required": "Required",
        "options": "Options (value=label, comma-separated)", "condition_field": "Shown when field",
        "condition_in": "has one of the values (comma-separated)",
        "show_to_customer": "Customer sees it", "json": "As JSON", "role": "Role",
        "email": "E-mail", "active": "Active", "add_agent": "Add agent",
        "token_once": "The new agent's token (shown only once):", "columns": "Columns",
        "lanes": "Lanes", "board_json": "Columns and lanes (JSON)", "edit": "Edit",
        "default_priority": "Default priority", "auto_close": "Auto-close after days waiting",
        "service_language": "Service language",
        "answer_in_customer_language": "Answer in the customer's language when the desk "
                                       "speaks it (English, Russian)",
        "done_hint": "Press Enter or Space on a focused card to move it",
        "card_link": "Open card", "version": "version", "loading": "Loading…",
        "no_cards": "No cards", "members": "Members", "deactivate": "Deactivate",
        "skip": "Skip to the board", "rating": "Rating", "due": "Due date", "tags": "Tags",
        "add": "Add", "limit": "limit {m} min",
        "units": "d h m", "board_name": "Board name", "add_column": "Add column",
        "add_lane": "Add lane", "category": "Status category", "wip_limit": "WIP limit",
        "time_limit": "Time limit (min)", "name": "Name",
    },
    "ru": {
        "app": "Служба поддержки", "board": "Доска", "my_cards": "Мои карточки",
        "new_card": "Новое обращение", "admin": "Администрирование", "stats": "Статистика",
        "sign_out": "Выйти", "sign_in": "Войти", "token": "API-токен агента",
        "token_help": "Этот токен выдал вам администратор.",
        "sign_in_failed": "Токен не принят.", "language": "Язык", "filters": "Фильтры",
        "service": "Услуга", "priority": "Приоритет", "sla": "SLA", "assignee": "Исполнитель",
        "search": "Поиск", "apply": "Применить", "reset": "Сбросить", "any": "любой",
        "me": "я", "nobody": "никто", "warning": "предупреждение", "breached": "нарушен",
        "low": "низкий", "medium": "средний", "high": "высокий", "critical": "критический",
        "collapse_lane": "Свернуть дорожку", "expand_lane": "Развернуть дорожку",
        "cards": "карточек", "card_one": "карточка", "card_few": "карточки",
        "card_many": "карточек", "move_to": "Переместить в…", "move": "Переместить",
        "cancel": "Отмена", "column": "Колонка", "lane": "Дорожка",
        "moved": "{number} перемещена в «{column}»",
        "conflict": "Конфликт: {number} тем временем изменил кто-то другой. Доска показывает "
                    "текущее состояние; попробуйте ещё раз.",
        "wip": "Отказано: {message}", "error": "Ошибка: {message}",
        "live_change": "{number} изменена", "live_new": "Новая карточка {number}",
        "new_reply": "Новый ответ клиента", "unassigned": "не назначена",
        "left": "осталось {t}", "overdue": "просрочено на {t}", "in_column": "в колонке {t}",
        "stale": "дольше лимита колонки ({m} мин)", "sla_ok": "SLA в норме",
        "sla_warning": "SLA: предупреждение", "sla_breached": "SLA нарушен",
        "live_on": "Обновления в реальном времени включены",
        "live_off": "Переподключение обновлений…", "fields": "Поля",
        "customer_sees": "видит клиент", "internal_only": "только агенты",
        "conversation": "Переписка", "public_reply": "Публичный ответ (увидит клиент)",
        "internal_note": "Внутренняя заметка (только агенты)", "send": "Отправить",
        "reply_kind": "Тип ответа", "canned": "Шаблон ответа", "none": "нет",
        "preview": "Предпросмотр", "insert": "Вставить", "attachments": "Вложения",
        "checklist": "Чек-лист", "add_item": "Добавить пункт", "links": "Связи",
        "parent": "Родительская", "child": "Дочерняя", "add_child": "Добавить дочернюю",
        "history": "История", "sla_record": "Запись SLA", "target": "Цель",
        "state": "Состояние", "deadline": "Срок", "spent": "Затрачено", "pauses": "Паузы",
        "from": "С", "to": "По", "cause": "Причина",
        "sla_unavailable": "Запись SLA сейчас недоступна.", "mark_read": "Отметить прочитанным",
        "requester": "Заявитель", "number": "Номер", "status": "Статус", "created": "Создана",
        "title": "Тема", "text": "Текст", "public": "публичный", "internal": "внутренняя",
        "by": "автор", "save": "Сохранить", "saved": "Сохранено", "create": "Создать",
        "customer_email": "E-mail клиента", "customer_name": "Имя клиента",
        "lookup_hint": "Начните вводить, чтобы найти прежних заявителей",
        "created_card": "Создана {number}", "services": "Услуги", "boards": "Доски",
        "agents": "Агенты", "id": "Идентификатор", "name_en": "Название (англ.)",
        "name_ru": "Название (рус.)", "target_board": "Доска", "target_column": "Колонка",
        "target_lane": "Дорожка", "access_domains": "Разрешённые домены (через запятую)",
        "access_addresses": "Разрешённые адреса (через запятую)", "sla_policy": "Политика SLA",
        "reply_default": "Тип ответа по умолчанию",
        "notify_on": "Уведомлять клиента при переходе в", "assignment": "Правило назначения",
        "assign_agents": "Агенты (id через запятую)",
        "status_names": "Названия статусов для клиента", "form_fields": "Поля формы",
        "add_field": "Добавить поле", "remove": "Удалить", "key": "Ключ",
        "label_en": "Подпись (англ.)", "label_ru": "Подпись (рус.)", "type": "Тип",
        "required": "Обязательное", "options": "Варианты (значение=подпись, через запятую)",
        "condition_field": "Показывать, когда поле",
        "condition_in": "имеет одно из значений (через запятую)",
        "show_to_customer": "Видит клиент", "json": "В виде JSON", "role": "Роль",
        "email": "E-mail", "active": "Активен", "add_agent": "Добавить агента",
        "token_once": "Токен нового агента (показывается один раз):", "columns": "Колонки",
        "lanes": "Дорожки", "board_json": "Колонки и дорожки (JSON)", "edit": "Изменить",
        "default_priority": "Приоритет по умолчанию",
        "auto_close": "Автозакрытие через дней ожидания",
        "service_language": "Язык услуги",
        "answer_in_customer_language": "Отвечать на языке клиента, если служба на нём говорит "
                                       "(английский, русский)",
        "done_hint": "Enter или пробел на карточке — переместить её",
        "card_link": "Открыть карточку", "version": "версия", "loading": "Загрузка…",
        "no_cards": "Нет карточек", "members": "Участники", "deactivate": "Отключить",
        "skip": "Перейти к доске", "rating": "Оценка", "due": "Срок", "tags": "Метки",
        "add": "Добавить", "limit": "лимит {m} мин",
        "units": "д ч м", "board_name": "Название доски", "add_column": "Добавить колонку",
        "add_lane": "Добавить дорожку", "category": "Категория статуса",
        "wip_limit": "Лимит WIP", "time_limit": "Лимит времени (мин)", "name": "Название",
    },
}


def pick_language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return cookie
    header = request.headers.get("accept-language", "")
    best, best_q = "en", -1.0
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.split("-")[0].lower()
        if lang in LANGS and q > best_q:
            best, best_q = lang, q
    return best


def texts(lang: str) -> dict[str, str]:
    return TEXT.get(lang, TEXT["en"])
