"""The workspace's sign-in API: exchange an agent API token for a browser session.

Sessions themselves (cookie, CSRF token, expiry) are `boards.auth`'s; this is only the
`/v1/session` resource the sign-in page and scripts talk to.
"""

from __future__ import annotations

from desk_runtime.http import Forbidden, Unauthorized
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from boards.auth import close_session, csrf_ok, open_session, session_of

router = APIRouter(prefix="/v1", tags=["session"])


class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=500, description="the agent's API token")


class SessionOut(BaseModel):
    agent_id: str
    name: str
    role: str
    csrf_token: str = Field(description="send as X-CSRF-Token on POST/PUT/PATCH/DELETE")


@router.post("/session", response_model=SessionOut)
async def sign_in(body: SignIn, request: Request, response: Response) -> dict:
    """Exchange an agent API token for an HttpOnly session cookie."""
    agent, csrf = await open_session(request, response, body.token)
    return {"agent_id": agent.id, "name": agent.name, "role": agent.role, "csrf_token": csrf}


@router.get("/session", response_model=SessionOut)
async def whoami(request: Request) -> dict:
    found = await session_of(request)
    if found is None:
        raise Unauthorized("not signed in")
    agent, doc = found
    return {"agent_id": agent.id, "name": agent.name, "role": agent.role,
            "csrf_token": doc["csrf"]}


@router.delete("/session", status_code=204)
async def sign_out(request: Request, response: Response) -> Response:
    """Sign out: the session is deleted on the server, not only forgotten by the browser."""
    found = await session_of(request)
    if found is not None and not csrf_ok(request, found[1]):
        raise Forbidden("missing or wrong CSRF token")
    await close_session(request, response)
    response.status_code = 204
    return response
