"""The automation admin page (`/admin/automation`): each service's category tree with
what each level decides, the rules in plain words, request and checklist templates; and an
editor that saves any of them through `/v1/automation/...` (boards.automation.api), the
refusal shown field by field."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boards.automation.repository import AutomationRepository
from boards.repository import Repositories
from boards.web import i18n as workspace_i18n
from boards.web.admin.pages import _admin_page

router = APIRouter(include_in_schema=False)

TEXTS = {
    "en": {"area_automation": "Automation", "automation": "Automation",
           "categories": "Categories", "rules": "Rules",
           "request_templates": "Request templates", "checklists": "Checklist templates",
           "service": "Service", "answer": "Answer", "decides": "Decides",
           "inherits": "as above", "when": "When", "if": "If", "then": "Then",
           "always": "always", "version": "version", "inactive": "inactive",
           "steps": "Steps", "items": "Items", "editor": "Create or change",
           "kind": "What", "id": "Id", "definition": "Definition (JSON)", "save": "Save",
           "edit": "Edit", "saved": "Saved: {id}", "refused": "Not saved:",
           "board": "board", "none_yet": "None yet."},
    "ru": {"area_automation": "Автоматизация", "automation": "Автоматизация",
           "categories": "Категории", "rules": "Правила",
           "request_templates": "Шаблоны заявок", "checklists": "Шаблоны чек-листов",
           "service": "Услуга", "answer": "Ответ", "decides": "Задаёт",
           "inherits": "как выше", "when": "Когда", "if": "Если", "then": "То",
           "always": "всегда", "version": "версия", "inactive": "выключено",
           "steps": "Шаги", "items": "Пункты", "editor": "Создать или изменить",
           "kind": "Что", "id": "Идентификатор", "definition": "Описание (JSON)",
           "save": "Сохранить", "edit": "Изменить", "saved": "Сохранено: {id}",
           "refused": "Не сохранено:", "board": "доска", "none_yet": "Пока нет."},
}

KINDS = (("categories", "categories"), ("rules", "rules"),
         ("request-templates", "request_templates"), ("checklist-templates", "checklists"))


def texts(lang: str) -> dict[str, str]:
    return TEXTS.get(lang, TEXTS["en"])


def _tree(categories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Categories in form order: each parent followed by its children, with its level."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    for c in categories:
        by_parent.setdefault(c.get("parent_id"), []).append(c)
    out: list[dict[str, Any]] = []

    def walk(parent: str | None, level: int) -> None:
        for c in by_parent.get(parent, []):
            out.append(c | {"level": level})
            walk(c["_id"], level + 1)
    walk(None, 1)
    return out


def _editable(doc: dict[str, Any]) -> dict[str, Any]:
    """A definition as the editor shows it (what PUT takes back)."""
    skip = {"_id", "version", "saved_by", "saved_at"}
    return {"id": doc["_id"], **{k: v for k, v in doc.items() if k not in skip}}


@router.get("/admin/automation")
async def automation_page(request: Request) -> Response:
    async def load(request: Request) -> dict:
        db = request.app.state.runtime.db
        auto = AutomationRepository(db)
        services = await Repositories.of(db).catalog.list_services()
        categories = list(await auto.all("category"))
        lang = workspace_i18n.pick_language(request)
        return {
            "automation_services": [
                {"id": s.id, "name": s.name.get(lang),
                 "tree": _tree([c for c in categories if c["service_id"] == s.id])}
                for s, _ in services if any(c["service_id"] == s.id for c in categories)],
            "automation_rules": list(await auto.all("rule")),
            "automation_templates": list(await auto.all("request_template")),
            "automation_checklists": list(await auto.all("checklist")),
            "automation_editable": {
                kind: {d["_id"]: _editable(d) for d in await auto.all(store)}
                for kind, store in (("categories", "category"), ("rules", "rule"),
                                    ("request-templates", "request_template"),
                                    ("checklist-templates", "checklist"))},
        }
    return await _admin_page(request, "admin/automation.html", "automation", load)
