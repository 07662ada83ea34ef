"""`ivr serve` assembled from settings: every part built in one place, then run.

`build(settings)` constructs the whole application in one readable function,
each part handed to the next through its constructor: the insurer's systems
(when `settings.backend` is `insurer`) with their backend, router and history
recorder; the catalog of releases (flows, prompts and their audio, routing
rules); the call store; the agent page (when agents are configured); the
media resolver; the metrics (an observer of every call, told of ARI
errors); the speech workers (unless speech is off); the ARI client; the
controller; the events websocket; the HTTP server, and the Prometheus
endpoint when `metrics_port` is set. Nothing is attached to a part after it
is built. What tests and the demo swap is a typed keyword of `build`
(`backend`, `admin`, `gateway`, `observers`, `agent_page`, `metrics`).

`serve(application)` runs an application already built: HTTP up, signals
installed, events flowing until `stop` is set (or SIGTERM/SIGINT), then a
shutdown in stages within `SHUTDOWN_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from ivr import sealing
from ivr.ari import AriClient, EventStream
from ivr.ari.outbound import OutboundEndpoint, WebSocketAri
from ivr.backend.base import Backend, SampleBackend
from ivr.config import Settings
from ivr.controller.app import Controller
from ivr.controller.calllog import CallLog
from ivr.controller.media import MediaResolver
from ivr.controller.outbound import OutboundCalls
from ivr.controller.promptaudio import ReleaseAudio
from ivr.controller.session import Observer, Services
from ivr.controller.speech import SpeechService
from ivr.embedded import Embedded, open_embedded
from ivr.flow.catalog import Catalog
from ivr.lease import Leases, controller_id
from ivr.metrics import EventSource, Metrics, metrics_app
from ivr.payments import PaymentGateway
from ivr.policyadmin.base import PolicyAdmin
from ivr.routing.router import Router
from ivr.store import RedisCallStore
from ivr.web.server import AgentPage
from ivr.web.server import agent_page as build_agent_page

log = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 6.0  # under docker's 10 s and systemd's 90 s between SIGTERM and SIGKILL


@dataclass(frozen=True)
class Application:
    """Every part of a running `ivr serve`, as `build` made them."""

    settings: Settings
    insurer: Embedded | None  # the insurer's systems; None with `backend: sample`
    backend: Backend
    router: Router | None
    catalog: Catalog
    store: RedisCallStore
    agent_page: AgentPage | None
    media: MediaResolver
    speech: SpeechService | None
    ari: AriClient
    observers: tuple[Observer, ...]
    controller: Controller
    events: EventStream | None  # inbound mode: our events websocket to Asterisk
    outbound: OutboundEndpoint | None  # outbound mode: Asterisk's websockets to us
    http: web.AppRunner
    metrics: Metrics
    metrics_http: web.AppRunner | None  # GET /metrics on metrics_host:metrics_port; None when that is unset


async def build(settings: Settings, *, backend: Backend | None = None, admin: PolicyAdmin | None = None,
                gateway: PaymentGateway | None = None, observers: Sequence[Observer] = (),
                agent_page: AgentPage | None = None, metrics: Metrics | None = None) -> Application:
    """The application these settings describe.

    Swaps, each replacing one part: `backend` answers the flows' actions instead of the one
    `settings.backend` names (the insurer's systems, router and recorder stay when it is
    `insurer`); `admin` and `gateway` are the insurer's policy system and payment gateway;
    `observers` are told of every call after the call log and the history recorder;
    `agent_page` is served instead of the one built from `settings.agents`; `metrics` counts
    instead of metrics of the application's own.
    """
    insurer = await open_embedded(settings, admin=admin, gateway=gateway) if settings.backend == "insurer" else None
    try:
        return _assemble(settings, insurer, backend, observers, agent_page, metrics)
    except BaseException:
        if insurer is not None:
            await insurer.aclose()
        raise


def _assemble(settings: Settings, insurer: Embedded | None, backend: Backend | None, observers: Sequence[Observer],
              page: AgentPage | None, metrics: Metrics | None = None) -> Application:
    router = insurer.router if insurer is not None else None
    synthesize = _synthesizer()
    audio = ReleaseAudio(settings.prompts_dir, settings.sounds_dir, settings.media_base_url, synthesize)
    catalog = Catalog(settings.flows_dir, settings.prompts_dir, routing=router.path if router else None,
                      prepare=audio.prepare)  # a release's rules join its flows and prompts
    sealer = sealing.for_settings(settings)
    if settings.redis_url is None:  # `ivr serve` starts a private Redis and sets it
        raise ValueError("building the application needs settings.redis_url")
    store = RedisCallStore.from_url(settings.redis_url, sealer)
    if page is None:
        page = build_agent_page(settings, store, insurer.systems if insurer is not None else None)  # or None
    media = MediaResolver(settings.sounds_dir, settings.media_base_url, synthesize, keyed_hash=sealer.digest,
                          fetchers=settings.media_allowed_addresses)
    recognisers = _recognisers(settings)
    if metrics is None:
        metrics = Metrics(recognisers)
    outbound_mode = settings.ari_mode == "outbound"
    # Outbound: each call's REST goes over its own connection; this client only stands for "none yet".
    ari = WebSocketAri(None, timeout=settings.ari_request_timeout, on_error=metrics.ari_error) if outbound_mode \
        else AriClient.from_settings(settings, on_error=metrics.ari_error)
    if backend is None:
        backend = insurer.backend if insurer is not None else SampleBackend()
    told: tuple[Observer, ...] = (CallLog(), *([insurer.recorder] if insurer is not None else []), *observers,
                                  metrics)
    speech = _speech_service(settings, recognisers)  # last: its worker processes start now
    services = Services(ari=ari, store=store, backend=backend, media=media, app=settings.ari_app,
                        desk_app=settings.ari_desk_app if outbound_mode else None,
                        transfer_context=settings.transfer_context, observers=list(told), speech=speech,
                        keyed_hash=sealer.digest)
    leases = Leases(store.client, settings.controller_id or controller_id(), settings.call_lease_seconds,
                    name_digest=lambda name: sealer.digest("channel-name", name)) if outbound_mode else None
    controller = Controller(services, catalog, settings.entry_flow, dnis_languages=settings.dnis_languages,
                            router=router, leases=leases, outbound_flow=settings.campaign_flow)
    events, outbound = None, None
    source: EventSource
    if outbound_mode:
        watchers = (page.desk.on_ari_event,) if page is not None else ()  # the agent desk sees each event first
        source = handler = OutboundCalls(controller, takeover_wait=settings.call_lease_seconds + 1.0, watchers=watchers,
                                         desk_app=settings.ari_desk_app)
        files = AriClient.from_settings(settings, on_error=metrics.ari_error) if settings.speech == "record" else None
        outbound = OutboundEndpoint(settings.ari_outbound_path, settings.ari_outbound_user,
                                    settings.ari_outbound_password_value, handler,
                                    timeout=settings.ari_request_timeout, on_error=metrics.ari_error, files=files)
    else:
        on_event = page.desk.wrap(controller.on_event) if page is not None else controller.on_event  # desk first
        source = events = EventStream.from_settings(settings, on_event=on_event, on_connect=controller.on_connect)
    http = web.AppRunner(_http_app(media, page, outbound), shutdown_timeout=1.0)  # a prompt download is not worth a stuck stop
    metrics_http = web.AppRunner(metrics_app(metrics, source), shutdown_timeout=1.0) \
        if settings.metrics_port is not None else None
    return Application(settings=settings, insurer=insurer, backend=backend, router=router, catalog=catalog,
                       store=store, agent_page=page, media=media, speech=speech, ari=ari, observers=told,
                       controller=controller, events=events, outbound=outbound, http=http, metrics=metrics,
                       metrics_http=metrics_http)


async def serve(app: Application, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None) -> None:
    """Run a built application until `stop` is set (or SIGTERM/SIGINT); `ready` is set once the
    events websocket is connected. Calls stay in Stasis for the next controller."""
    try:
        await app.http.setup()
        await web.TCPSite(app.http, app.settings.http_host, app.settings.http_port).start()
        if app.metrics_http is not None:
            await app.metrics_http.setup()
            await web.TCPSite(app.metrics_http, app.settings.metrics_host, app.settings.metrics_port).start()
            log.info("metrics: %s", ", ".join(f"http://{host}:{port}/metrics"
                                               for host, port, *_ in app.metrics_http.addresses))
        stop = stop or asyncio.Event()
        _install_signals(stop, app.catalog)
        stream_task = asyncio.create_task(app.events.run()) if app.events is not None else None
        if ready is not None:
            if app.events is not None:
                await app.events.wait_connected()
            ready.set()  # outbound: Asterisk connects when calls come
        await stop.wait()
        await _shut_down(app, stream_task)
    finally:
        await app.ari.close()


async def _shut_down(app: Application, stream_task: asyncio.Task[None] | None) -> None:
    log.info("stopping: %d call(s) stay in Stasis for the next controller", len(app.controller.sessions))
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    if app.events is not None and stream_task is not None:
        await _bounded("events websocket", app.events.aclose(), deadline)
        stream_task.cancel()
    if app.outbound is not None:  # no takeover may begin a session while they stop
        await _bounded("outbound takeovers", app.outbound.handler.aclose(), deadline)
    await _bounded("call sessions", app.controller.aclose(), deadline)  # leases released: others take over at once
    if app.outbound is not None:  # then Asterisk reconnects each call to another controller
        await _bounded("outbound websockets", app.outbound.aclose(), deadline)
    if app.agent_page is not None:
        await _bounded("agent page", app.agent_page.aclose(), deadline)
    await _bounded("http server", app.http.cleanup(), deadline)
    if app.metrics_http is not None:
        await _bounded("metrics endpoint", app.metrics_http.cleanup(), deadline)
    await _bounded("redis", app.store.close(), deadline)
    if app.speech is not None:
        await _bounded("speech workers", asyncio.to_thread(app.speech.close), deadline)
    if app.insurer is not None:  # the history recorder's last writes, the policy system, their Redis
        await _bounded("insurer systems", app.insurer.aclose(), deadline)
    log.info("stopped")


async def _bounded(stage: str, work: Awaitable[object], deadline: float) -> None:
    """One stage of shutdown, within the time left: a stage stuck on one peer must
    neither outlive the supervisor's patience nor keep the later stages from running."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(work, max(0.1, deadline - started))
    except TimeoutError:
        log.warning("stopping: %s did not finish in time; left behind", stage)
        return
    if (elapsed := time.monotonic() - started) > 0.5:
        log.info("stopping: %s took %.1f s", stage, elapsed)


def _recognisers(settings: Settings) -> dict[str, str]:
    """The engine that hears each call language; none when calls are keys-only."""
    if settings.speech == "off":
        return {}
    from ivr.speech import languages

    return languages.choose_for(settings)


def _speech_service(settings: Settings, chosen: dict[str, str]) -> SpeechService | None:
    """Recogniser workers for `stream`/`record` speech (`chosen`: engine per language); None when
    calls are keys-only."""
    if settings.speech == "off":
        return None
    from ivr.speech import languages
    from ivr.speech.endpoint import detector_for
    from ivr.speech.worker import SpeechWorkers

    detector = detector_for(settings.voice_detector)
    log.info("speech: %s; voice detector %s",
             ", ".join(f"{language} by {engine}" for language, engine in sorted(chosen.items())), detector)
    workers = SpeechWorkers(settings.speech_processes or None,
                            factory=languages.factory(chosen, settings.vosk_model, settings.whisper_model),
                            detector=detector)
    return SpeechService(workers, settings.speech, settings.rtp_host, frozenset(chosen))


def _http_app(media: MediaResolver, page: AgentPage | None, outbound: OutboundEndpoint | None) -> web.Application:
    """Prompt audio for Asterisk, /health, Asterisk's outbound websockets and the agent page when there are."""
    app = web.Application()
    app.add_routes(media.routes())
    app.add_routes(outbound.routes() if outbound is not None else [])
    app.add_routes([web.get("/health", _health)])
    app.add_routes(page.routes() if page is not None else [])
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _install_signals(stop: asyncio.Event, catalog: Catalog) -> None:
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, catalog.request_reload)  # parsed on a worker thread
    except (NotImplementedError, RuntimeError):
        pass  # not the main thread (tests): the caller sets `stop`


def _synthesizer() -> Callable[[str, str], bytes] | None:
    try:
        from ivr.speech.tts import synthesize
    except ImportError:
        return None
    return synthesize
