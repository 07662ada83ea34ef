"""HTTP routes of the agent page, all under ``/agent``.

Nothing is served to someone who has not signed in: the page answers 401
(with the sign-in form as its body, so a browser still shows something
useful), and so do the page's script and style, every API and the
websocket. The sign-in form itself is self-contained (inline style, no
script), so it leaks nothing of the page.

Requests that change something (sign-out, outcome) must come from the page
itself: an ``Origin`` header, when the browser sends one, must name this
host, and the outcome API takes JSON only (a cross-site form cannot send it).

Behind a TLS proxy listed in ``trusted_proxies`` every handler sees the
request as the client made it (``proxy.TrustedProxies``): the https scheme
and public host for the Origin check and the Secure cookie, the client's
own address for the sign-in throttle and the logs.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from yarl import URL

from ivr.config import AgentAccount, Settings
from ivr.logsetup import SHOWN_CHARS, shown
from ivr.web.accounts import COOKIE, Accounts, Throttled
from ivr.web.caller_data import (
    OUTCOMES,
    CallerDirectory,
    CallerHistoryContacts,
    CallStateDirectory,
    ContactHistory,
    PolicyAdminDirectory,
    RedisContactHistory,
)
from ivr.web.desk import AgentDesk, NotYourCall
from ivr.web.proxy import TrustedProxies

if TYPE_CHECKING:
    from ivr.backend.systems import Systems
    from ivr.store import RedisCallStore

log = logging.getLogger(__name__)
SIGN_IN_BYTES = 4096  # an agent id and a token; aiohttp would read a 1 MB form
STATIC = resources.files("ivr.web") / "static"
ASSETS = {"desk.js": "application/javascript", "desk.css": "text/css"}
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " \
      "script-src 'self'; frame-ancestors 'none'; form-action 'self'"


class AgentPage:
    def __init__(self, accounts: Accounts, desk: AgentDesk, proxies: TrustedProxies | None = None):
        self.accounts = accounts
        self.desk = desk
        self.proxies = proxies or TrustedProxies()
        self._sockets: set[web.WebSocketResponse] = set()

    async def aclose(self) -> None:
        """Close the agents' websockets (their pages reconnect), then the desk: a quick shutdown."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"controller stopping")
        await self.desk.aclose()

    def routes(self) -> list[web.RouteDef]:
        sent = self._as_client_sent
        return [
            web.get("/agent", sent(self.page)), web.get("/agent/", sent(self.page)),
            web.post("/agent/signin", sent(self.sign_in)), web.post("/agent/signout", sent(self.sign_out)),
            web.get("/agent/static/{name}", sent(self.asset)),
            web.get("/agent/api/queues", sent(self.queues)), web.get("/agent/api/calls", sent(self.calls)),
            web.get("/agent/api/calls/{call_id}", sent(self.call)),
            web.post("/agent/api/calls/{call_id}/outcome", sent(self.outcome)),
            web.get("/agent/ws", sent(self.websocket)),
        ]

    def _as_client_sent(self, handler: Handler) -> Handler:
        """Per route rather than as an app middleware: the proxy headers concern the agent page only."""
        async def handle(request: web.Request) -> web.StreamResponse:
            return await handler(self.proxies.effective(request))
        return handle

    # --- who is asking ------------------------------------------------------------

    def _agent(self, request: web.Request) -> AgentAccount | None:
        return self.accounts.agent_for(request.cookies.get(COOKIE))

    def _require(self, request: web.Request) -> AgentAccount:
        agent = self._agent(request)
        if agent is None:
            raise web.HTTPUnauthorized(text=json.dumps({"message": "sign in first"}), content_type="application/json",
                                       headers=NO_STORE)
        return agent

    @staticmethod
    def _same_origin(request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and not _same_site(origin, request.scheme, request.host):
            raise web.HTTPForbidden(text=json.dumps({"message": "cross-site request refused"}),
                                    content_type="application/json")

    # --- pages ----------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        if self._agent(request) is None:
            return _signin_page(status=401)
        body = (STATIC / "desk.html").read_text(encoding="utf-8")
        return web.Response(text=body, content_type="text/html", headers={**NO_STORE, "Content-Security-Policy": CSP})

    async def asset(self, request: web.Request) -> web.Response:
        self._require(request)
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.Response(text=(STATIC / name).read_text(encoding="utf-8"), content_type=ASSETS[name],
                            headers=NO_STORE)

    async def sign_in(self, request: web.Request) -> web.Response:
        self._same_origin(request)
        if request.content_length is None:
            raise web.HTTPLengthRequired()  # a chunked body would be read up to aiohttp's 1 MB
        if request.content_length > SIGN_IN_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=SIGN_IN_BYTES, actual_size=request.content_length)
        form = await request.post()
        agent_id, token = str(form.get("agent", "")).strip(), str(form.get("token", ""))
        try:
            session = self.accounts.sign_in(agent_id, token, request.remote or "?")
        except Throttled:
            log.warning("agent sign-in throttled for %s from %s", shown(agent_id), request.remote)
            return _signin_page(status=429, error="Too many attempts. Wait a few minutes and try again.")
        if session is None:
            log.info("agent sign-in refused for %s from %s", shown(agent_id), request.remote)
            return _signin_page(status=401, error="Agent id or token not recognised.", agent_id=agent_id[:SHOWN_CHARS])
        response = web.Response(status=303, headers={"Location": "/agent/", **NO_STORE})
        response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/agent", secure=request.secure,
                            max_age=int(self.accounts.session_seconds))
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        self._same_origin(request)
        self.accounts.sign_out(request.cookies.get(COOKIE))
        response = web.Response(status=303, headers={"Location": "/agent/", **NO_STORE})
        response.del_cookie(COOKIE, path="/agent")
        return response

    # --- APIs -----------------------------------------------------------------------

    async def queues(self, request: web.Request) -> web.Response:
        return web.json_response(self.desk.queue_view(self._require(request)), headers=NO_STORE)

    async def calls(self, request: web.Request) -> web.Response:
        agent = self._require(request)
        return web.json_response([p.model_dump(mode="json") for p in self.desk.pops_of(agent)], headers=NO_STORE)

    async def call(self, request: web.Request) -> web.Response:
        agent = self._require(request)
        try:
            pop = self.desk.pop_for(agent, request.match_info["call_id"])
        except NotYourCall:
            raise web.HTTPNotFound(text=json.dumps({"message": "no such call of yours"}),
                                   content_type="application/json") from None
        return web.json_response(pop.model_dump(mode="json"), headers=NO_STORE)

    async def outcome(self, request: web.Request) -> web.Response:
        agent = self._require(request)
        self._same_origin(request)
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text=json.dumps({"message": "send JSON"}),
                                               content_type="application/json")
        try:
            body: Any = await request.json()
            outcome = str(body.get("outcome", "")) if isinstance(body, dict) else ""
        except ValueError:
            outcome = ""
        if outcome not in OUTCOMES:
            raise web.HTTPBadRequest(text=json.dumps({"message": f"outcome must be one of {list(OUTCOMES)}"}),
                                     content_type="application/json")
        try:
            pop = await self.desk.record_outcome(agent, request.match_info["call_id"], outcome)
        except NotYourCall:
            raise web.HTTPNotFound(text=json.dumps({"message": "no such call of yours"}),
                                   content_type="application/json") from None
        except Exception as exc:   # history store down: tell the agent, who can click again
            log.error("outcome for call %s not recorded: %s", request.match_info["call_id"], exc)
            raise web.HTTPServiceUnavailable(text=json.dumps({"message": "outcome not saved, try again"}),
                                             content_type="application/json") from None
        return web.json_response({"call_id": pop.call_id, "outcome": pop.outcome}, headers=NO_STORE)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        agent = self._require(request)
        self._same_origin(request)
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)

        async def send(message: dict[str, Any]) -> None:
            if not ws.closed:
                await ws.send_json(message)

        await send({"type": "hello", "agent": {"id": agent.id, "name": agent.name or agent.id,
                                               "queues": agent.queues}, "outcomes": list(OUTCOMES)})
        await send(self.desk.queue_view(agent))
        for pop in self.desk.pops_of(agent):
            await send({"type": "pop", "pop": pop.model_dump(mode="json")})
        self.desk.listen(agent, send)
        self._sockets.add(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT and message.data == "ping":
                    await ws.send_str("pong")
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
            self.desk.unlisten(agent, send)
        return ws


def _same_site(origin: str, scheme: str, host: str) -> bool:
    """Compared as scheme, host and port: a proxy may pass ``Host: name:443`` where the browser says ``https://name``."""
    try:
        theirs, ours = URL(origin), URL(f"{scheme}://{host}")
    except ValueError:
        return False
    return theirs.host is not None and (theirs.scheme, theirs.host, theirs.port) == (ours.scheme, ours.host, ours.port)


def _signin_page(status: int, error: str = "", agent_id: str = "") -> web.Response:
    body = (STATIC / "signin.html").read_text(encoding="utf-8")
    body = body.replace("{{error}}", f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
    body = body.replace("{{agent}}", html.escape(agent_id, quote=True))
    return web.Response(text=body, status=status, content_type="text/html",
                        headers={**NO_STORE, "Content-Security-Policy": CSP})


def agent_page(settings: Settings, store: RedisCallStore, systems: Systems | None) -> AgentPage | None:
    """The agent page for these settings, or None when no agent is configured.

    `store` is the controller's call store (its ``load`` gives a call's saved
    state; its Redis client keeps agent outcomes). With the insurer's
    `systems` (policy administration and caller history), profiles and past
    calls come from them; without (``backend: sample``), from what the call
    itself learned.
    """
    if not settings.agents:
        return None
    proxies = TrustedProxies.parse(settings.trusted_proxies)
    if proxies.networks:
        log.info("agent page: X-Forwarded-For/-Proto/-Host believed from %s",
                 ", ".join(map(str, proxies.networks)))
    accounts = Accounts(settings.agents, settings.agent_session_hours)
    directory: CallerDirectory
    history: ContactHistory
    if systems is not None:
        directory = PolicyAdminDirectory(systems.admin, systems.today)
        history = CallerHistoryContacts(systems.history, RedisContactHistory(store.client, "ivr:outcomes:"))
    else:
        directory, history = CallStateDirectory(), RedisContactHistory(store.client)
    return AgentPage(accounts, AgentDesk(accounts, store.load, directory, history, store.sealer), proxies)
