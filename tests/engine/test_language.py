"""The call speaks the caller's language: their record once they are known, the line they dialled, their choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ivr import engine
from ivr.config import Settings
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.language import dnis_language, start_language
from ivr.flow.catalog import FlowSet, load_flow_set

ROOT = Path(__file__).resolve().parents[2]
LINES = {"18005550188": "zh", "18005550199": "en"}


@pytest.fixture(scope="module")
def shipped() -> FlowSet:
    release, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    return release


class Caller:
    """A caller of the shipped main menu; remembers each prompt heard and its language."""

    def __init__(self, release: FlowSet, call: dict, language: str | None = None):
        self.release = release
        self.heard: list[tuple[str, str]] = []
        self.listens: list[act.Listen] = []
        self._absorb(engine.start(release, "main_menu", "c1", call=call, language=language))

    def _absorb(self, result: engine.Step) -> None:
        self.state = result.state
        for action in result.actions:
            if isinstance(action, act.Play):
                self.heard += [(p.key, action.language) for p in action.prompts]
            elif isinstance(action, act.Listen):
                self.listens.append(action)

    def send(self, event: ev.Event) -> None:
        self._absorb(engine.step(self.release, self.state, event))

    def keys(self, digits: str) -> None:
        self.send(ev.Dtmf(digits=digits))

    def reply(self, outcome: str, **data) -> None:
        assert self.state.pending and self.state.pending.kind == "backend", self.state.pending
        self.send(ev.BackendResult(name=self.state.pending.action, outcome=outcome, data=data))

    def language_of(self, key: str) -> str:
        return next(language for heard, language in self.heard if heard == key)


def _identified_by_policy_number(caller: Caller, record_language: str) -> None:
    """Payment, caller number not on file, policy number keyed and confirmed, found with its record."""
    caller.keys("2")
    caller.reply("declined", reason="not_on_file")
    assert caller.state.node == "ask_policy"
    caller.keys("40012345")
    caller.keys("1")  # the read-back: yes
    caller.reply("ok", id="C-1", first_name="Mei", policy_number="40012345", locked=False, language=record_language)


# --- the function the controller calls ------------------------------------------------------


def test_start_language_prefers_the_record_then_the_dialled_line_then_the_channel():
    assert start_language({"caller_language": "zh", "dnis": "18005550199", "language": "en"}, LINES) == "zh"
    assert start_language({"caller_language": None, "dnis": "18005550188", "language": "en"}, LINES) == "zh"
    assert start_language({"dnis": "18005550100", "language": "zh"}, LINES) == "zh"
    assert start_language({"dnis": "18005550100", "language": None}, LINES) is None
    assert start_language({}) is None


def test_start_language_skips_languages_without_prompts():
    assert start_language({"caller_language": "fr", "dnis": "18005550188"}, LINES) == "zh"
    assert start_language({"caller_language": "ko", "language": "en"}) == "en"


def test_dialled_numbers_compare_by_their_digits():
    assert dnis_language("+1 800 555-0188", LINES) == "zh"
    assert dnis_language("18005550188", {"+1-800-555-0188": "zh"}) == "zh"
    assert dnis_language("", LINES) is None and dnis_language("s", LINES) is None


def test_the_setting_maps_dialled_numbers_to_languages(monkeypatch):
    monkeypatch.delenv("IVR_DNIS_LANGUAGES", raising=False)
    assert Settings().dnis_languages == {}
    monkeypatch.setenv("IVR_DNIS_LANGUAGES", "18005550188=zh, 18005550199=en")
    settings = Settings()
    assert settings.dnis_languages == LINES
    assert start_language({"dnis": "18005550188"}, settings.dnis_languages) == "zh"
    assert Settings(dnis_languages={"18005550188": "zh"}).dnis_languages == {"18005550188": "zh"}
    monkeypatch.setenv("IVR_DNIS_LANGUAGES", "18005550188=fr")
    with pytest.raises(ValidationError, match="'fr' for 18005550188"):
        Settings()
    monkeypatch.setenv("IVR_DNIS_LANGUAGES", "18005550188:zh")
    with pytest.raises(ValidationError, match="number=language"):
        Settings()


# --- the engine -------------------------------------------------------------------------------


def test_a_policyholder_identified_by_caller_number_at_start_hears_their_language_first(shipped):
    caller = Caller(shipped, {"ani": "+15550109", "language": "en", "caller_language": "zh"})
    assert caller.heard[0] == ("main.welcome", "zh")
    assert all(language == "zh" for _, language in caller.heard)
    menu = caller.listens[0]
    assert menu.language == "zh" and menu.grammar["缴费"] == "payment" and "payment" not in menu.grammar


def test_a_policyholder_identified_by_policy_number_hears_their_language_from_then_on(shipped):
    caller = Caller(shipped, {"ani": "+15557770001", "language": "en"})
    _identified_by_policy_number(caller, "zh")
    assert caller.language_of("main.menu") == "en" and caller.language_of("verify.policy_number") == "en"
    assert caller.state.language == "zh" and caller.state.node == "ask_dob"
    assert caller.heard[-1] == ("verify.dob", "zh") and caller.listens[-1].language == "zh"
    assert any(turn.kind == "language" and turn.matched == "zh" for turn in caller.state.path)
    caller.keys("19800531#")
    caller.reply("ok", verified=True, method="dob", attempts_left=3)
    caller.reply("ok", amount=86.4, due_date="2026-11-01", reason_text="x", cancel_date="2026-12-31")
    assert caller.language_of("payment.offer") == "zh"


def test_pressing_9_still_switches_and_the_choice_outlasts_the_record(shipped):
    caller = Caller(shipped, {"ani": "+15557770001", "language": "en"})
    caller.keys("9")
    assert caller.state.language == "zh" and caller.heard[-1] == ("main.menu", "zh")
    _identified_by_policy_number(caller, "en")
    assert caller.state.language == "zh" and caller.heard[-1] == ("verify.dob", "zh")


def test_a_record_in_a_language_without_prompts_changes_nothing(shipped):
    caller = Caller(shipped, {"ani": "+15557770001", "language": "en"})
    _identified_by_policy_number(caller, "fr")
    assert caller.state.language == "en" and caller.heard[-1] == ("verify.dob", "en")


def test_the_dialled_line_chooses_for_a_caller_nobody_is_on_file_for(shipped):
    call = {"ani": "+15557770001", "dnis": "18005550188", "language": "en"}
    caller = Caller(shipped, call, language=start_language(call, LINES))
    assert caller.heard[0] == ("main.welcome", "zh")


def test_one_list_of_languages_is_what_every_part_accepts():
    """`ivr.prompts.LANGUAGES` is the one list: flows, scripts, the command line and call data read it."""
    import typing

    from ivr import cli
    from ivr.designer.script import Script
    from ivr.flow.model import Flow, Language
    from ivr.prompts import LANGUAGES

    assert typing.get_args(Language) == LANGUAGES
    assert Flow.model_json_schema()["properties"]["languages"]["items"]["enum"] == list(LANGUAGES)
    assert Script(script="s", flow="f", language=LANGUAGES[-1]).language == LANGUAGES[-1]
    with pytest.raises(ValidationError):
        Script(script="s", flow="f", language="xx")
    parser = cli.build_parser()
    assert parser.parse_args(["simulate", "main_menu", "--language", LANGUAGES[-1]]).language == LANGUAGES[-1]
    assert parser.parse_args(["prompts", "build", "--language", *LANGUAGES]).language == list(LANGUAGES)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "main_menu", "--language", "xx"])


def test_every_language_the_ivr_speaks_has_what_its_logic_keys_by_language():
    """Adding a language to the list is not enough: these tables must speak it too."""
    from ivr.engine.matching import YES_NO
    from ivr.prompts import LANGUAGES
    from ivr.speech.tts import VOICES

    for language in LANGUAGES:
        assert set(YES_NO[language]) == {"yes", "no"}, language
        assert language in VOICES, language
        assert (ROOT / "prompts" / f"{language}.yaml").is_file(), language
