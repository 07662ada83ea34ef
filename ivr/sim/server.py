"""The aiohttp application and ``start_simulator()``.

Middlewares, outermost first: ARI errors to JSON, authentication (HTTP
basic or ``api_key=user:pass``), request validation against the API docs.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import control_http, rest
from .config import SimulatorConfig
from .core import Simulator
from .errors import AriError
from .validator import ApiSpec, Violation
from .websocket import drop_app_connections, events_websocket

log = logging.getLogger(__name__)
SPEC_KEY = web.AppKey("spec", ApiSpec)
VIOLATIONS_KEY = web.AppKey("violations", list)


@web.middleware
async def error_middleware(request: web.Request, handler: rest.Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AriError as exc:
        return web.json_response({"message": exc.message}, status=exc.status)
    except web.HTTPNotFound:
        if request.path.startswith("/ari/"):
            return web.json_response({"message": "Resource not found"}, status=404)
        raise
    except web.HTTPMethodNotAllowed:
        return web.json_response({"message": "Method not allowed"}, status=405)


@web.middleware
async def auth_middleware(request: web.Request, handler: rest.Handler) -> web.StreamResponse:
    if not request.path.startswith("/ari/"):
        return await handler(request)
    config = request.app[rest.SIM_KEY].config
    expected = f"{config.username}:{config.password}"
    supplied = request.query.get("api_key")
    header = request.headers.get("Authorization", "")
    if supplied is None and header.lower().startswith("basic "):
        try:
            supplied = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            supplied = None
    if supplied != expected:
        return web.json_response({"message": "Authentication required"}, status=401,
                                 headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'})
    return await handler(request)


@web.middleware
async def validation_middleware(request: web.Request, handler: rest.Handler) -> web.StreamResponse:
    spec = request.app.get(SPEC_KEY)
    if spec is None or not request.path.startswith("/ari/"):
        return await handler(request)
    body: Any = None
    if request.body_exists and request.content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"null")
        except json.JSONDecodeError:
            body = "<invalid json>"
    problems = spec.check(request.method, request.path[len("/ari"):], request.query, body)
    if problems:
        violation = Violation(request.method, request.path, dict(request.query), problems)
        request.app[VIOLATIONS_KEY].append(violation)
        log.warning("ARI request not in the API docs: %s %s: %s", request.method, request.path, problems)
        if request.app[rest.SIM_KEY].config.strict:
            return web.json_response({"message": "; ".join(problems)}, status=400)
    return await handler(request)


def build_app(sim: Simulator) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware, validation_middleware])
    app[rest.SIM_KEY] = sim
    app[VIOLATIONS_KEY] = sim.violations
    docs = sim.config.api_docs_dir
    if docs is not None and docs.is_dir():
        app[SPEC_KEY] = ApiSpec.load(docs)
    app.router.add_get("/ari/events", events_websocket)
    rest.add_routes(app)
    control_http.add_routes(app)

    async def on_startup(started: web.Application) -> None:
        await sim.outbound.start(started)       # persistent outbound websockets connect now
    app.on_startup.append(on_startup)

    async def on_shutdown(_app: web.Application) -> None:
        await sim.close()
    app.on_shutdown.append(on_shutdown)
    return app


@dataclass
class RunningSimulator:
    """A started simulator: where it listens and the in-process handle."""
    sim: Simulator
    runner: web.AppRunner
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ari_url(self) -> str:
        return f"{self.base_url}/ari"

    def events_url(self, app: str = "ivr", subscribe_all: bool = False) -> str:
        cfg = self.sim.config
        extra = "&subscribeAll=true" if subscribe_all else ""
        return f"ws://{self.host}:{self.port}/ari/events?app={app}&api_key={cfg.username}:{cfg.password}{extra}"

    @property
    def violations(self) -> list[Violation]:
        return self.sim.violations

    async def drop_websocket(self, app: str = "ivr") -> int:
        return await drop_app_connections(self.sim, app)

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_simulator(config: SimulatorConfig | None = None, host: str = "127.0.0.1",
                          port: int = 0) -> RunningSimulator:
    """Start the ARI simulator; ``port=0`` picks a free port."""
    sim = Simulator(config)
    runner = web.AppRunner(build_app(sim), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port    # the port picked for port=0
    return RunningSimulator(sim, runner, host, bound)
