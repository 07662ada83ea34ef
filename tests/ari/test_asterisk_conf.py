"""The Asterisk configuration a deployer copies is consistent and lint-clean.

The dialplan is checked with the real checker, asterisklint; the other files
with a small parser of Asterisk's config syntax, against each other, against
the controller's defaults, and against the configuration the ground-truth
traces were recorded with.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.config import Settings
from ivr.engine.actions import FALLBACK_QUEUE

CONF = Path(__file__).resolve().parents[2] / "asterisk-conf"
QUEUES = {"save_specialists", "payments", "policy_service", "orphan_desk", "complaints", "customer_service"}


@dataclass
class Section:
    name: str
    template: bool = False
    parents: list[str] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]


def parse_conf(path: Path) -> list[Section]:
    """Asterisk config syntax: [name](!), [name](tmpl,...), key = value, key => value, ; comments."""
    sections: list[Section] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = re.sub(r"(?<!\\);.*", "", raw).strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            options = [o.strip() for o in (header.group(2) or "").split(",") if o.strip()]
            sections.append(Section(header.group(1), "!" in options, [o for o in options if o != "!"]))
            continue
        item = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*=>?\s*(.*)", line)
        assert item and sections, f"{path.name}:{number}: not Asterisk config syntax: {raw!r}"
        sections[-1].items.append((item.group(1), item.group(2).strip()))
    return sections


def expanded(sections: list[Section], name: str) -> list[tuple[str, str]]:
    """The items of section `name` as Asterisk's config parser builds them.

    `[queue](a,b)` copies the items of template `a` (itself expanded first,
    so `[a](!,base)` starts with base's), then of `b`, then the section's own,
    in that order. The last section of that name wins, as in the tests above.
    """
    templates = {s.name: s for s in sections if s.template}
    target = [s for s in sections if s.name == name][-1]
    items: list[tuple[str, str]] = []
    for parent in target.parents:
        items.extend(expanded([*templates.values()], parent))
    return items + target.items


def effective(items: list[tuple[str, str]]) -> dict[str, str]:
    """Single-valued keys as app_queue takes them: the first occurrence.

    That is how a static queue reads `strategy` (`ast_variable_retrieve`, and
    `queue_set_param` ignores later ones); other keys would take the last, so
    the configuration repeats none (test_no_queue_repeats_a_key_of_its_template).
    """
    values: dict[str, str] = {}
    for key, value in items:
        values.setdefault(key, value)
    return values


def resolved(sections: list[Section], name: str) -> dict[str, list[str]]:
    """Every value of each key of section `name`, template items first."""
    values: dict[str, list[str]] = {}
    for key, value in expanded(sections, name):
        values.setdefault(key, []).append(value)
    return values


def test_expected_files_exist() -> None:
    for name in ("http.conf", "ari.conf", "extensions.conf", "queues.conf", "pjsip.conf",
                 "modules.conf", "amd.conf", "README.md"):
        assert (CONF / name).is_file(), name


@pytest.fixture(scope="module")
def asterisklint() -> str:
    # the project's virtualenv has it even when its bin/ is not on PATH (.venv/bin/pytest)
    path = shutil.which("asterisklint") or shutil.which("asterisklint", path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip("asterisklint not installed")
    return path


def run_lint(asterisklint: str, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([asterisklint, "dialplan-check", str(conf)], capture_output=True,
                          text=True, timeout=120, cwd=conf.parent)


# asterisklint's list of applications lacks AMD (apps/app_amd.c, in Asterisk since 1.4): the one
# report it makes on our dialplan, at the AMD() of [ivr-outbound], and nowhere else.
AMD_UNKNOWN_TO_LINT = "E_APP_MISSING: app 'AMD' does not exist, dialplan will halt here!"


def lint_findings(report: str) -> list[str]:
    """The report's lines but the one about AMD() in [ivr-outbound]."""
    text = (CONF / "extensions.conf").read_text().splitlines()
    amd_lines = {i for i, line in enumerate(text, 1) if line.strip().startswith("same => n,AMD(")}
    assert len(amd_lines) == 1
    amd_report = f"extensions.conf:{amd_lines.pop()} {AMD_UNKNOWN_TO_LINT}"
    return [line for line in report.splitlines() if line.strip() and not line.endswith(amd_report)]


def test_dialplan_passes_asterisklint(asterisklint: str) -> None:
    result = run_lint(asterisklint, CONF / "extensions.conf")
    report = result.stdout + result.stderr
    assert lint_findings(report) == [], report
    assert result.returncode in (0, 1), report


def test_asterisklint_allowance_is_only_amd(asterisklint: str, tmp_path: Path) -> None:
    """The AMD allowance hides nothing else: a misspelt application is still reported."""
    broken = (CONF / "extensions.conf").read_text().replace(
        "same => n,NoOp(IVR outbound AMD", "same => n,NoOpp(IVR outbound AMD")
    (tmp_path / "extensions.conf").write_text(broken)
    result = run_lint(asterisklint, tmp_path / "extensions.conf")
    findings = lint_findings(result.stdout + result.stderr)
    assert len(findings) == 1 and "E_APP_MISSING" in findings[0] and "NoOpp" in findings[0], findings


def test_asterisklint_does_catch_mistakes(asterisklint: str, tmp_path: Path) -> None:
    """Guard against a vacuous pass: a broken copy must be reported."""
    broken = (CONF / "extensions.conf").read_text().replace(
        "Goto(ivr-transfer,queue,1)", "Goto(ivr-transfr,queue,1)")
    (tmp_path / "extensions.conf").write_text(broken)
    result = run_lint(asterisklint, tmp_path / "extensions.conf")
    assert result.returncode == 1
    assert "E_DP_GOTO_NOCONTEXT" in result.stdout + result.stderr


def defaults() -> Settings:
    """The built-in defaults, whatever IVR_* variables the test run has."""
    return Settings.model_construct()


def test_dialplan_matches_controller_defaults() -> None:
    settings = defaults()
    text = (CONF / "extensions.conf").read_text()
    sections = {s.name: s for s in parse_conf(CONF / "extensions.conf")}
    assert f"IVR_APP={settings.ari_app}" in [f"{k}={v}" for k, v in sections["globals"].items]
    assert settings.transfer_context in sections
    transfer = " ".join(v for _, v in sections[settings.transfer_context].items)
    for needed in ("queue,1,", "QUEUE_PRIO=", "${IVR_PRIORITY}", "${IVR_REASON}", "Queue(${IVR_QUEUE},"):
        assert needed in transfer, needed
    entry = " ".join(v for _, v in sections["ivr-entry"].items)
    assert "Stasis(${IVR_APP}," in entry
    assert '$["${STASISSTATUS}" = "FAILED"]' in entry
    assert "CALLERID(num)=" not in text, "the caller's number must be kept as received"
    globals_ = dict(sections["globals"].items)
    assert {globals_["IVR_FALLBACK_QUEUE"], globals_["IVR_ORPHAN_QUEUE"]} <= QUEUES
    assert globals_["IVR_FALLBACK_QUEUE"] == FALLBACK_QUEUE, "the controller down and the controller lost: one queue"


def test_queues_are_all_defined_with_interface_vars() -> None:
    sections = parse_conf(CONF / "queues.conf")
    names = {s.name for s in sections if not s.template} - {"general"}
    assert names == QUEUES
    pjsip = {s.name for s in parse_conf(CONF / "pjsip.conf") if not s.template}
    for queue in QUEUES:
        values = resolved(sections, queue)
        assert values["setinterfacevar"][-1] == "yes", queue
        members = values.get("member", [])
        assert members, f"{queue} has no members"
        for member in members:
            interface = member.split(",")[0]
            assert interface.startswith("PJSIP/") and interface[len("PJSIP/"):] in pjsip, member


STRATEGIES = {"save_specialists": "ringall", "orphan_desk": "ringall", "payments": "rrmemory",
              "policy_service": "rrmemory", "complaints": "rrmemory", "customer_service": "rrmemory"}
MULTI_VALUED = {"member"}


def repeated_template_keys(sections: list[Section]) -> dict[str, set[str]]:
    """Per section, the single-valued keys it sets again after a template set them."""
    found: dict[str, set[str]] = {}
    for section in sections:
        inherited = {key for parent in section.parents for key, _ in expanded(sections, parent)}
        repeated = {key for key, _ in section.items} & inherited - MULTI_VALUED
        if repeated:
            found[section.name] = repeated
    return found


def test_each_queue_has_the_strategy_it_was_written_for() -> None:
    sections = parse_conf(CONF / "queues.conf")
    assert {q: effective(expanded(sections, q)).get("strategy") for q in QUEUES} == STRATEGIES


def test_no_queue_repeats_a_key_of_its_template() -> None:
    """An override of a template key is ignored for `strategy` and at best fragile for the others."""
    assert repeated_template_keys(parse_conf(CONF / "queues.conf")) == {}


def test_queue_checks_catch_an_override_asterisk_ignores(tmp_path: Path) -> None:
    """The shape the deployer hit: ringall after a template's rrmemory stays rrmemory."""
    (tmp_path / "queues.conf").write_text("[base](!)\nstrategy = rrmemory\nsetinterfacevar = yes\n"
                                          "[q](base)\nstrategy = ringall\nmember => PJSIP/a,0,A\n")
    sections = parse_conf(tmp_path / "queues.conf")
    assert effective(expanded(sections, "q"))["strategy"] == "rrmemory"
    assert repeated_template_keys(sections) == {"q": {"strategy"}}


def test_routed_queues_refuse_callers_nobody_can_answer_and_the_orphan_desk_keeps_them() -> None:
    sections = parse_conf(CONF / "queues.conf")
    globals_ = dict(next(s for s in parse_conf(CONF / "extensions.conf") if s.name == "globals").items)
    for queue in QUEUES:
        values = effective(expanded(sections, queue))
        if queue == globals_["IVR_ORPHAN_QUEUE"]:
            assert (values["joinempty"], values["leavewhenempty"]) == ("yes", "no")
        else:
            assert "unavailable" in values["joinempty"] and "invalid" in values["joinempty"], queue
        assert values["musicclass"] == "default" and values["announce-position"] == "no", queue


def test_queue_options_are_known(asterisk_truth: Path) -> None:
    """Keys are those the recorded Asterisk 22 accepted, or standard queues.conf options."""
    reference = {k for s in parse_conf(asterisk_truth / "traces" / "conf" / "queues.conf") for k, _ in s.items}
    standard = {"autofill", "shared_lastcall", "maxlen", "musicclass", "autopause", "weight",
                "announce-holdtime"}
    ours = {k for s in parse_conf(CONF / "queues.conf") for k, _ in s.items}
    assert ours <= reference | standard, ours - reference - standard


@pytest.mark.parametrize("name", ["http.conf", "ari.conf"])
def test_http_and_ari_use_only_keys_real_asterisk_accepted(asterisk_truth: Path, name: str) -> None:
    reference = {(s.name if s.name == "general" else "user", k)
                 for s in parse_conf(asterisk_truth / "traces" / "conf" / name) for k, _ in s.items}
    ours = {(s.name if s.name == "general" else "user", k) for s in parse_conf(CONF / name) for k, _ in s.items}
    assert ours <= reference, ours - reference


def test_http_is_loopback_and_ari_user_is_a_placeholder() -> None:
    http = {k: v for s in parse_conf(CONF / "http.conf") for k, v in s.items}
    assert http["bindaddr"] == "127.0.0.1" and http["enabled"] == "yes"
    assert f"http://{http['bindaddr']}:{http['bindport']}" == defaults().ari_url
    users = [s for s in parse_conf(CONF / "ari.conf") if s.name != "general"]
    assert [u.name for u in users] == [defaults().ari_user]
    assert dict(users[0].items)["type"] == "user"
    assert "CHANGE_ME" in dict(users[0].items)["password"]


def test_no_real_secrets_anywhere() -> None:
    for path in CONF.glob("*.conf"):
        for section in parse_conf(path):
            for key, value in section.items:
                if key in ("password", "secret"):
                    assert value.startswith("CHANGE_ME"), (path.name, section.name, key)


def test_modules_require_what_the_controller_uses() -> None:
    items = [(k, v) for s in parse_conf(CONF / "modules.conf") for k, v in s.items]
    required = {v for k, v in items if k == "require"}
    noload = {v for k, v in items if k == "noload"}
    assert {"res_ari.so", "res_ari_events.so", "app_stasis.so", "res_stasis_snoop.so", "app_queue.so",
            "res_musiconhold.so", "chan_rtp.so", "res_http_media_cache.so", "func_talkdetect.so",
            "app_amd.so"} <= required
    assert not required & noload


def test_sip_is_loaded_but_not_required_for_a_first_try() -> None:
    """A host without SIP (or with a pjsip.conf still full of placeholders) must still start."""
    items = [(k, v) for s in parse_conf(CONF / "modules.conf") for k, v in s.items]
    sip = {"res_pjsip.so", "chan_pjsip.so"}
    assert sip <= {v for k, v in items if k == "load"}
    assert not sip & {v for k, v in items if k in ("require", "preload-require", "noload")}


async def test_a_refused_queue_falls_back_keeping_what_the_controller_chose() -> None:
    """The project's dialplan in the simulator: with no controller, Stasis() fails and the caller is
    sent to customer_service; that queue lets nobody in (the simulator's stand-in for JOINEMPTY is a
    queue it does not know: Queue() returns at once, QUEUESTATUS=UNKNOWN), so the caller waits at the
    orphan desk, and IVR_QUEUE / IVR_REASON still say what was chosen and why."""
    from ivr.sim import SimulatorConfig, load_asterisk_conf, start_simulator

    config = load_asterisk_conf(SimulatorConfig(), CONF)
    del config.queues["customer_service"]
    running = await start_simulator(config)
    try:
        call = running.sim.inbound_call(ani="+15550100", exten="8001", context="from-trunk")
        for _ in range(200):  # joining a queue notifies no waiter of the simulated call: look again
            if call.queue is not None and call.queue.queue == "orphan_desk":
                break
            await asyncio.sleep(0.02)
        assert call.queue is not None and call.queue.queue == "orphan_desk"
        assert (call.variable("IVR_QUEUE"), call.variable("IVR_REASON")) == ("customer_service", "ivr_unavailable")
        assert (call.variable("IVR_QUEUE_FALLBACK"), call.variable("IVR_QUEUE_STATUS")) == ("orphan_desk", "UNKNOWN")
        await call.hangup()
        await call.wait_ended()
    finally:
        await running.stop()


def test_outbound_context_runs_amd_before_stasis_and_never_queues() -> None:
    """[ivr-outbound]: NoOp, AMD(), Stasis(${IVR_APP},outbound,${AMDSTATUS},${IVR_ATTEMPT}); when Stasis fails, hang up:
    no Queue, no Playback (a rescue call must not reach an agent unexplained nor leave a voicemail)."""
    sections = {s.name: s for s in parse_conf(CONF / "extensions.conf")}
    steps = [v for k, v in sections["ivr-outbound"].items]
    apps = [re.sub(r"^(?:s,1|n(?:\([^)]*\))?),", "", step).split("(")[0] for step in steps]
    assert apps[:4] == ["NoOp", "AMD", "NoOp", "Stasis"], apps
    assert "Stasis(${IVR_APP},outbound,${AMDSTATUS},${IVR_ATTEMPT})" in steps[3]
    assert not {"Queue", "Playback", "Background", "Goto", "Dial"} & set(apps), apps
    assert apps[-1] == "Hangup" and any('"${STASISSTATUS}" = "FAILED"' in s for s in steps)


def test_amd_conf_holds_app_amds_keys_and_is_what_the_simulator_reads() -> None:
    """app_amd.c load_config's keys only; the simulator's AMD() reads the same numbers."""
    from ivr.sim import AmdSettings, SimulatorConfig, load_asterisk_conf

    keys = {k for s in parse_conf(CONF / "amd.conf") for k, _ in s.items}
    assert keys <= {"initial_silence", "greeting", "after_greeting_silence", "silence_threshold",
                    "total_analysis_time", "min_word_length", "between_words_silence",
                    "maximum_number_of_words", "maximum_word_length", "playback_file"}
    assert load_asterisk_conf(SimulatorConfig(), CONF).amd == AmdSettings()


def test_the_outbound_trunk_is_the_endpoint_the_campaign_dials() -> None:
    """The campaign originates PJSIP/<number>@trunk: an endpoint named trunk must exist."""
    endpoints = [s for s in parse_conf(CONF / "pjsip.conf") if s.name == "trunk" and ("type", "endpoint") in s.items]
    assert len(endpoints) == 1
