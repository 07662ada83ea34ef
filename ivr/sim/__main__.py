"""Run the simulator as its own process: ``python -m ivr.sim --port 8088 --sounds DIR``.

Callers are then driven over ``/sim/calls`` (see control_http.py).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from .config import SimulatorConfig, load_asterisk_conf, load_callees
from .server import start_simulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ivr.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--sounds", type=Path, action="append", default=[], help="sounds directory (repeatable)")
    parser.add_argument("--recordings", type=Path, help="where recordings are stored")
    parser.add_argument("--asterisk-conf", type=Path, help="directory with extensions.conf / queues.conf")
    parser.add_argument("--callees", type=Path, help="JSON file: dialled number -> callee script (callees.py)")
    parser.add_argument("--api-docs", type=Path, help="Asterisk's api-docs directory (request validation)")
    parser.add_argument("--strict", action="store_true", help="reject requests not in the API docs")
    parser.add_argument("--user", default="ivr")
    parser.add_argument("--password", default="ivr-secret")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    config = SimulatorConfig(username=args.user, password=args.password, sounds_dirs=args.sounds,
                             api_docs_dir=args.api_docs, strict=args.strict)
    if args.recordings:
        config.recordings_dir = args.recordings
    if args.asterisk_conf:
        load_asterisk_conf(config, args.asterisk_conf)
    if args.callees:
        load_callees(config, args.callees)
    running = await start_simulator(config, args.host, args.port)
    logging.getLogger(__name__).warning("ARI simulator on %s (events: ws://%s:%d/ari/events)",
                                        running.ari_url, running.host, running.port)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(serve(parse_args(argv)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
