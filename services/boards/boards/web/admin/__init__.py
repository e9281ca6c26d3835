"""The admin pages of the agents' workspace: each area's page and the API its forms call.

Every area is owned by one service (SLA policies and calendars by sla, alert routes and
mail templates by notify, portal access by the portal, boards and canned responses by
boards); a page changes it through that service's admin API, called from here with the
service's admin token, so the browser never holds one. Each change is written to boards'
audit log of configuration changes (`repository.AuditRepository`).
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from boards.web import pages as workspace_pages
    from boards.web.admin import api, automation, i18n, pages

    # the area navigation is also drawn on the catalog page (boards.web.pages' /admin)
    workspace_pages.env.globals["admin_texts"] = i18n.texts
    workspace_pages.env.globals["automation_texts"] = automation.texts
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(automation.router)
