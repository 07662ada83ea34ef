"""``/sim/...``: drive simulated callers from another process (demo, benchmark).

Not part of ARI and not authenticated; the simulator listens on loopback.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from .config import parse_callees
from .core import Simulator
from .rest import SIM_KEY
from .simcall import SimCall
from .websocket import drop_app_connections

TASKS_KEY = web.AppKey("sim_tasks", set)


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def _call(request: web.Request) -> SimCall:
    call = _sim(request).calls.get(request.match_info["channelId"])
    if call is None:
        raise web.HTTPNotFound(text='{"message": "Call not found"}', content_type="application/json")
    return call


async def _body(request: web.Request) -> dict[str, Any]:
    if request.body_exists:
        data = await request.json()
        return data if isinstance(data, dict) else {}
    return dict(request.query)


def _background(request: web.Request, coro: Any) -> None:
    tasks: set[asyncio.Task[Any]] = request.app[TASKS_KEY]
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def create_call(request: web.Request) -> web.Response:
    body = await _body(request)
    call = _sim(request).inbound_call(str(body.get("ani", "")), str(body.get("exten", "s")),
                                      caller_name=str(body.get("caller_name", "")),
                                      context=str(body.get("context", "ivr-inbound")))
    return web.json_response(call.summary(), status=201)


async def list_calls(request: web.Request) -> web.Response:
    return web.json_response([c.summary() for c in _sim(request).calls.values()])


async def get_call(request: web.Request) -> web.Response:
    return web.json_response(_call(request).summary())


async def press(request: web.Request) -> web.Response:
    call, body = _call(request), await _body(request)
    _background(request, call.press(str(body.get("digits", "")), float(body.get("interval", 0.35))))
    return web.Response(status=204)


async def say(request: web.Request) -> web.Response:
    call, body = _call(request), await _body(request)
    length = await call.say(Path(str(body["path"])), wait=False)
    return web.json_response({"seconds": length})


async def hangup(request: web.Request) -> web.Response:
    call, body = _call(request), await _body(request)
    await call.hangup(int(body.get("cause", 16)))
    return web.Response(status=204)


async def agent_hangup(request: web.Request) -> web.Response:
    _call(request).agent_hangup()
    return web.Response(status=204)


async def agent_answer(request: web.Request) -> web.Response:
    call, body = _call(request), await _body(request)
    if not call.agent_answer(str(body.get("interface", ""))):
        raise web.HTTPConflict(text='{"message": "That member is not ringing for this call"}',
                               content_type="application/json")
    return web.Response(status=204)


async def drop_app(request: web.Request) -> web.Response:
    dropped = await drop_app_connections(_sim(request), request.match_info["app"])
    return web.json_response({"dropped": dropped})


def _json_error(exc_type: type[web.HTTPException], message: str) -> web.HTTPException:
    return exc_type(text=json.dumps({"message": message}), content_type="application/json")


async def put_callees(request: web.Request) -> web.Response:
    """``{"callees": {"<number>": {<script>}, ...}}``: add or replace scripts (callees.py)."""
    body = await _body(request)
    try:
        scripts = parse_callees(body.get("callees"))
        _sim(request).callees.put(scripts)
    except (ValueError, TypeError) as exc:
        raise _json_error(web.HTTPBadRequest, str(exc)) from None
    except OverflowError as exc:     # the table is full: nothing of this request was added
        return web.json_response({"message": str(exc)}, status=413)
    return web.json_response({"count": len(_sim(request).callees.scripts)})


async def list_callees(request: web.Request) -> web.Response:
    book = _sim(request).callees
    return web.json_response({"max": book.max_entries,
                              "callees": {n: s.to_json() for n, s in book.scripts.items()}})


async def get_callee(request: web.Request) -> web.Response:
    """A number's script and the calls placed to it (their summaries, with what a machine heard)."""
    sim, number = _sim(request), request.match_info["number"]
    script = sim.callees.get(number)
    calls = [c.summary() for c in sim.calls.values() if c.callee_number == number]
    if script is None and not calls:
        raise _json_error(web.HTTPNotFound, "Callee not found")
    return web.json_response({"number": number, "script": None if script is None else script.to_json(),
                              "calls": calls})


async def delete_callee(request: web.Request) -> web.Response:
    if not _sim(request).callees.remove(request.match_info["number"]):
        raise _json_error(web.HTTPNotFound, "Callee not found")
    return web.Response(status=204)


async def clear_callees(request: web.Request) -> web.Response:
    _sim(request).callees.clear()
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app[TASKS_KEY] = set()
    r = app.router
    r.add_post("/sim/calls", create_call)
    r.add_get("/sim/calls", list_calls)
    r.add_get("/sim/calls/{channelId}", get_call)
    r.add_post("/sim/calls/{channelId}/press", press)
    r.add_post("/sim/calls/{channelId}/say", say)
    r.add_post("/sim/calls/{channelId}/hangup", hangup)
    r.add_post("/sim/calls/{channelId}/agent_answer", agent_answer)
    r.add_post("/sim/calls/{channelId}/agent_hangup", agent_hangup)
    r.add_post("/sim/apps/{app}/drop", drop_app)
    r.add_post("/sim/callees", put_callees)
    r.add_get("/sim/callees", list_callees)
    r.add_delete("/sim/callees", clear_callees)
    r.add_get("/sim/callees/{number}", get_callee)
    r.add_delete("/sim/callees/{number}", delete_callee)
