"""``GET /ari/events``: the application events websocket.

``?app=a,b`` registers (or re-activates) Stasis applications;
``subscribeAll=true`` makes them see every event.  A second connection for
the same application replaces the first (ApplicationReplaced).  Nothing is
sent on connect and nothing missed while disconnected is replayed.
"""
from __future__ import annotations

import json
import logging

from aiohttp import WSMsgType, web

from .core import Simulator
from .rest import sim_of
from .stasis import AppSocket

log = logging.getLogger(__name__)


async def events_websocket(request: web.Request) -> web.StreamResponse:
    sim = sim_of(request)
    names = [n for n in request.query.get("app", "").split(",") if n]
    if not names:
        return web.json_response({"message": "Missing param 'app'"}, status=400)
    outbound = [n for n in names if sim.outbound.owns(n)]
    if outbound:
        message = (f"Application(s) {','.join(outbound)} are outbound websocket applications (ari.conf): "
                   "connecting to them here is not simulated (no recorded trace shows it)")
        log.error(message)
        return web.json_response({"message": message}, status=501)
    subscribe_all = request.query.get("subscribeAll", "false").lower() == "true"
    ws = web.WebSocketResponse(autoping=True, heartbeat=None)
    await ws.prepare(request)
    sock = AppSocket(ws)
    for name in names:
        app = sim.bus.app(name)
        for old in list(app.sockets):
            old.send(_replaced(sim, name))
            await old.close()
            app.sockets.remove(old)
        app.sockets.append(sock)
        app.subscribe_all = subscribe_all
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        for name in names:
            registered = sim.bus.apps.get(name)
            if registered is not None and sock in registered.sockets:
                registered.sockets.remove(sock)
        await sock.close()
    return ws


def _replaced(sim: Simulator, app: str) -> str:
    return json.dumps({"type": "ApplicationReplaced", "timestamp": sim.ts(),
                       "application": app, "asterisk_id": sim.config.asterisk_id})


async def drop_app_connections(sim: Simulator, app_name: str) -> int:
    """Force-close every websocket of ``app_name`` (tests: network failure mid-call).

    The application stays registered and its calls stay in Stasis; events
    for it are dropped until it reconnects, as with a real Asterisk.
    """
    app = sim.bus.apps.get(app_name)
    if app is None:
        return 0
    sockets = list(app.sockets)
    app.sockets.clear()
    for sock in sockets:
        await sock.close(code=1001)
    return len(sockets)
