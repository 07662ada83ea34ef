"""An ARI-compatible Asterisk 22 simulator for tests, the demo and benchmarks.

Start it with :func:`start_simulator`; drive callers with
``running.sim.inbound_call(...)`` (a :class:`SimCall`).
"""
from .amd import AmdSettings
from .callees import CalleeScript
from .config import (
    OutboundWebsocket,
    QueueConfig,
    QueueMember,
    SimulatorConfig,
    load_asterisk_conf,
    load_callees,
    parse_amd_conf,
    parse_callees,
    parse_outbound_websockets,
    parse_queues_conf,
)
from .core import Simulator
from .queues import QueueOutcome
from .server import RunningSimulator, build_app, start_simulator
from .simcall import ContinueRecord, DeadAir, PromptRecord, SimCall
from .validator import ApiSpec, Violation

__all__ = [
    "AmdSettings", "CalleeScript", "load_callees", "parse_amd_conf", "parse_callees",
    "ApiSpec", "ContinueRecord", "DeadAir", "OutboundWebsocket", "PromptRecord", "QueueConfig", "QueueMember",
    "QueueOutcome",
    "RunningSimulator", "SimCall", "Simulator", "SimulatorConfig", "Violation", "build_app",
    "load_asterisk_conf", "parse_outbound_websockets", "parse_queues_conf", "start_simulator",
]
