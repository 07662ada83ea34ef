"""One release per call (issue 12, item 1): flows, prompts, their audio and routing rules reload together.

Before, the media resolver kept the prompt texts of start-up: after a prompt
was edited and SIGHUP sent, the engine went on with the new release while
the caller heard the old audio, and a key a reload added was "[key]" or a
sound that did not exist. Now every prompt is resolved with the release of
its call, and a release gets the audio of its changed or added prompts
before it is swapped in, so the next call hears the new words while a call
begun before the reload keeps the old ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest

from ivr.controller.media import MediaResolver
from ivr.controller.promptaudio import ReleaseAudio
from ivr.engine.actions import PromptRef
from ivr.flow.catalog import Catalog, FlowSet
from ivr.prompts import load_prompts
from tests.conftest import ROOT
from tests.controller.conftest import heard, make_rig, saved_state

OLD_DOB = load_prompts(ROOT / "prompts")[0].get("en", "verify.dob").text
NEW_DOB = "Please key in your date of birth, as eight digits."
HOLIDAY = {"en": "Our offices close at noon today.", "zh": "今天中午十二点下班。"}


def copy_release(tmp_path: Path) -> tuple[Path, Path]:
    """Flows and prompts of our own to edit (the built audio stays behind)."""
    flows, prompts = tmp_path / "flows", tmp_path / "prompts"
    shutil.copytree(ROOT / "flows", flows, ignore=shutil.ignore_patterns("scripts"))
    shutil.copytree(ROOT / "prompts", prompts, ignore=shutil.ignore_patterns("audio"))
    return flows, prompts


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def add_holiday_notice(flows: Path, prompts: Path) -> None:
    """A new prompt key, played by the greeting of a new version of the main menu."""
    for language, text in HOLIDAY.items():
        edit(prompts / f"{language}.yaml", "\nmain:\n", f'\nmain:\n  holiday: "{text}"\n')
    edit(flows / "main_menu.yaml", "    play: main.welcome\n    next: menu\n",
         "    play: [main.welcome, main.holiday]\n    next: menu\n")
    edit(flows / "main_menu.yaml", "\nversion: 2\n", "\nversion: 3\n")


async def sighup(caplog) -> None:
    """What an operator does after editing: SIGHUP, then the release is swapped in (or refused)."""
    assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None), \
        "serve() installed no SIGHUP handler: a SIGHUP would end the test run"
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(1000):
        if "replaces" in caplog.text or "refused" in caplog.text:
            assert "refused" not in caplog.text, caplog.text
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the reload never finished")


def played(call, key: str):
    [prompt] = [p for p in call.prompts if p.media_uri.endswith("/" + key)]
    return prompt


def synthesize(text: str, language: str) -> bytes:
    from ivr.speech.tts import synthesize as espeak

    return espeak(text, language)


async def test_an_edited_prompt_is_heard_by_the_next_call_while_the_call_in_progress_keeps_the_old(
        tmp_path, redis_url, caplog):
    pytest.importorskip("pyttsx3")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    _, prompts = copy_release(tmp_path)
    caplog.set_level(logging.INFO, logger="ivr.flow.catalog")
    async with make_rig(tmp_path, redis_url, prompts_dir=prompts, prompt_seconds_per_char=0.03) as rig:
        before = rig.call()
        await before.wait_until(lambda c: len(c.prompts) >= 2 and c.prompts[1].finished_at is None)
        edit(prompts / "en.yaml", OLD_DOB, NEW_DOB)
        await sighup(caplog)

        await before.press("1")  # the menu is still playing: a call begun before the reload
        await before.wait_until(lambda c: heard(c, "verify.dob"), timeout=15)
        await before.hangup()
        after = rig.call(ani="+15550101")
        await after.wait_until(lambda c: len(c.prompts) >= 2 and c.prompts[1].finished_at is None)
        await after.press("1")
        await after.wait_until(lambda c: heard(c, "verify.dob") and played(c, "verify.dob").audio_from is not None,
                               timeout=15)
        await after.hangup()

        old, new = played(before, "verify.dob").media_uri, played(after, "verify.dob").media_uri
        assert old == "sound:ivr/en/verify.dob", "the call in progress keeps its release's audio"
        assert new.startswith("sound:ivr/en/") and new != old
        audio = rig.settings.sounds_dir / (new.removeprefix("sound:ivr/") + ".wav")
        assert audio.read_bytes() == synthesize(NEW_DOB, "en"), "the next call hears the new words"
        assert audio.read_bytes() != synthesize(OLD_DOB, "en")
        assert (rig.settings.sounds_dir / "en" / "verify.dob.wav").is_file(), "the old audio stays for old calls"
        first, second = await saved_state(redis_url, before.channel_id), await saved_state(redis_url, after.channel_id)
        assert first.release != second.release, "each call saved the release it ran on"


async def test_a_prompt_key_a_reload_adds_plays_real_audio(tmp_path, redis_url, caplog):
    pytest.importorskip("pyttsx3")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    flows, prompts = copy_release(tmp_path)
    caplog.set_level(logging.INFO, logger="ivr.flow.catalog")
    async with make_rig(tmp_path, redis_url, flows_dir=flows, prompts_dir=prompts) as rig:
        add_holiday_notice(flows, prompts)
        await sighup(caplog)
        call = rig.call()
        await call.wait_until(lambda c: heard(c, "main.menu"))
        notice = played(call, "main.holiday")
        await call.wait_until(lambda c: notice.finished_at is not None)
        await call.press("0")
        await call.wait_continued()
        assert notice.media_uri.startswith("sound:ivr/en/") and notice.state == "done"
        assert notice.audio_from is not None, "heard, not a sound that does not exist"
        audio = rig.settings.sounds_dir / (notice.media_uri.removeprefix("sound:ivr/") + ".wav")
        assert audio.read_bytes() == synthesize(HOLIDAY["en"], "en")
        assert notice.duration > 1.0, "the sentence, not a placeholder"


# --- the release's audio, without Asterisk ------------------------------------------------------


class Voice:
    """A synthesiser that writes down what it was asked to say."""

    def __init__(self, fails: bool = False):
        self.said: list[str] = []
        self.fails = fails

    def __call__(self, text: str, language: str) -> bytes:
        if self.fails:
            raise RuntimeError("espeak-ng crashed")
        self.said.append(text)
        return b"RIFF" + text.encode()


def catalog_over(tmp_path: Path, voice: Voice | None) -> tuple[Catalog, Path, Path]:
    flows, prompts = copy_release(tmp_path)
    sounds = tmp_path / "sounds"
    audio = ReleaseAudio(prompts, sounds, None, voice)
    return Catalog(flows, prompts, prepare=audio.prepare), prompts, sounds


async def test_a_reload_builds_the_audio_of_what_it_changed_and_keeps_the_rest(tmp_path):
    voice = Voice()
    catalog, prompts, sounds = catalog_over(tmp_path, voice)
    first = catalog.current
    assert first.sound_stem("en", "verify.dob") == "en/verify.dob" and voice.said == [], "start-up: the built files"
    edit(prompts / "en.yaml", OLD_DOB, NEW_DOB)
    await catalog.request_reload()
    second = catalog.current
    assert second.id != first.id and voice.said == [NEW_DOB], "only the edited prompt is synthesised"
    stem = second.sound_stem("en", "verify.dob")
    assert stem.startswith("en/") and stem.endswith("/verify.dob") and stem != "en/verify.dob"
    assert (sounds / f"{stem}.wav").read_bytes() == b"RIFF" + NEW_DOB.encode()
    assert second.sounds["en/main.menu"] is first.sounds["en/main.menu"], "an unchanged prompt keeps its audio"
    assert "en/verify.verified" not in second.sounds, "prompts with call data are synthesised per call"

    media = MediaResolver(sounds, None, voice)
    assert await media.uri(first, "en", PromptRef(key="verify.dob")) == "sound:ivr/en/verify.dob"
    assert await media.uri(second, "en", PromptRef(key="verify.dob")) == f"sound:ivr/{stem}"
    remote = MediaResolver(sounds, "http://10.0.0.5:8090/media", voice)
    assert await remote.uri(second, "en", PromptRef(key="verify.dob")) == \
        f"sound:http://10.0.0.5:8090/media/prompts/{stem}.wav"
    assert remote.servable(f"sound:http://10.0.0.5:8090/media/prompts/{stem}.wav")


async def test_a_new_key_that_cannot_have_audio_refuses_the_reload(tmp_path, caplog):
    """No synthesiser here: a new prompt would be silence, so the release is refused with the
    prompt's line, and the running one keeps serving; a recording of it makes the reload go."""
    catalog, prompts, sounds = catalog_over(tmp_path, None)
    first = catalog.current
    add_holiday_notice(catalog.flows_dir, prompts)
    with caplog.at_level(logging.ERROR, logger="ivr.flow.catalog"):
        diagnostics = await catalog.request_reload()
    assert catalog.current is first
    errors = [d for d in diagnostics if d.severity.value == "error"]
    assert {(Path(d.file).name, d.code) for d in errors} == {("en.yaml", "no-audio"), ("zh.yaml", "no-audio")}
    assert "prompt 'main.holiday' (en) would play in silence: there is no speech synthesiser here" in caplog.text
    assert f"still serving {first.id}" in caplog.text and "en.yaml:" in caplog.text

    from ivr.speech.audio import wav_bytes

    for language in HOLIDAY:
        recording = prompts / "recorded" / language / "main.holiday.wav"
        recording.parent.mkdir(parents=True, exist_ok=True)
        recording.write_bytes(wav_bytes(b"\1\0" * 4000))
    await catalog.request_reload()
    assert catalog.current is not first
    stem = catalog.current.sound_stem("en", "main.holiday")
    assert stem != "en/main.holiday" and (sounds / f"{stem}.wav").is_file()


async def test_a_synthesiser_that_fails_refuses_the_reload(tmp_path):
    catalog, prompts, _ = catalog_over(tmp_path, Voice(fails=True))
    first = catalog.current
    edit(prompts / "en.yaml", OLD_DOB, NEW_DOB)
    diagnostics = await catalog.request_reload()
    assert catalog.current is first
    assert [(d.code, "espeak-ng crashed" in d.message) for d in diagnostics if d.severity.value == "error"] == \
        [("no-audio", True)]


async def test_prompts_with_call_data_say_the_words_of_the_calls_release(tmp_path):
    """A prompt with the caller's name, edited and reloaded: a call begun before hears the old
    sentence, a later one the new; each is named by its text, so both are served side by side;
    a key the reload added is the sentence, not "[key]"."""
    voice = Voice()
    catalog, prompts, sounds = catalog_over(tmp_path, voice)
    first = catalog.current
    edit(prompts / "en.yaml", 'verified: "Thank you, {caller.first_name}."',
         'verified: "Many thanks, {caller.first_name}."\n  welcome_back: "Welcome back, {caller.first_name}."')
    await catalog.request_reload()
    second = catalog.current
    media = MediaResolver(sounds, "http://10.0.0.5:8090/media", voice)
    ann = PromptRef(key="verify.verified", values={"caller.first_name": "Ann"})
    old = await media.uri(first, "en", ann, "call-before")
    new = await media.uri(second, "en", ann, "call-after")
    again = await media.uri(second, "en", PromptRef(key="verify.welcome_back", values={"caller.first_name": "Ann"}),
                            "call-after")
    assert voice.said == ["Thank you, Ann.", "Many thanks, Ann.", "Welcome back, Ann."]
    assert old != new and media.servable(old) and media.servable(new) and media.servable(again)


def test_a_release_without_prepared_audio_plays_the_built_files(tmp_path):
    """`ivr simulate`, the bench and the designer load releases without audio: plain names."""
    release = FlowSet("r", {}, load_prompts(ROOT / "prompts")[0])
    assert release.sound_stem("en", "main.menu") == "en/main.menu"


def test_a_restart_rebuilds_audio_the_build_made_from_an_earlier_text(tmp_path, caplog):
    """Edited and reloaded, then the server restarts: the file `ivr prompts build` left says the old
    words, and its manifest says so; the start-up check builds it again (or warns, when it cannot)."""
    import json

    from ivr.controller.promptaudio import ensure_prompt_audio
    from ivr.speech.tts import BuildReport

    prompts, sounds = tmp_path / "prompts", tmp_path / "sounds"
    prompts.mkdir()
    (prompts / "en.yaml").write_text('main:\n  hello: "Hello, and welcome back."\n', encoding="utf-8")
    (sounds / "en").mkdir(parents=True)
    (sounds / "en" / "main.hello.wav").write_bytes(b"RIFFold")
    (sounds / "manifest.json").write_text(json.dumps({"en/main.hello": {"hash": "h", "text": "Hello, and welcome."}}))
    builds: list[Path] = []

    def build(prompts_dir: Path, out_dir: Path) -> BuildReport:
        builds.append(out_dir)
        (out_dir / "en" / "main.hello.wav").write_bytes(b"RIFFnew")
        rebuilt = {"en/main.hello": {"hash": "i", "text": "Hello, and welcome back."}}
        (out_dir / "manifest.json").write_text(json.dumps(rebuilt))
        return BuildReport(built=["en/main.hello"])

    with caplog.at_level(logging.WARNING, logger="ivr.controller.promptaudio"):
        found = ensure_prompt_audio(prompts, sounds, problem=lambda: "espeak-ng is not installed", build=build)
    assert builds == [] and found.outdated == ["en/main.hello"] and "say an earlier text" in caplog.text
    found = ensure_prompt_audio(prompts, sounds, problem=lambda: None, build=build)
    assert builds == [sounds] and found.ready == ["en/main.hello"] and not found.outdated
    assert (sounds / "en" / "main.hello.wav").read_bytes() == b"RIFFnew"
