"""Which media URI a prompt gets, and the per-call audio the controller leaves on disk."""

from __future__ import annotations

from pathlib import Path

from ivr.controller.media import MediaResolver
from ivr.engine.actions import PromptRef
from ivr.prompts import load_prompts
from tests.conftest import ROOT


def resolver(sounds: Path, base_url: str | None = None, cache_size: int = 512) -> tuple[MediaResolver, list[str]]:
    catalog, _ = load_prompts(ROOT / "prompts")
    spoken: list[str] = []

    def synthesize(text: str, language: str) -> bytes:
        spoken.append(text)
        return b"RIFF" + text.encode()

    return MediaResolver(catalog, sounds, base_url, synthesize, cache_size=cache_size), spoken


def greeting(name: str) -> PromptRef:
    return PromptRef(key="verify.verified", values={"caller.first_name": name})


async def test_prompts_with_call_data_are_written_once_and_the_oldest_removed(tmp_path):
    sounds = tmp_path / "ivr"
    (sounds / "call" / "left-by-a-dead-controller").mkdir(parents=True)
    media, spoken = resolver(sounds, cache_size=2)
    assert not (sounds / "call").exists(), "a starting controller clears old per-call audio"
    ann = await media.uri("en", greeting("Ann"))
    assert ann.startswith("sound:ivr/call/") and ann.endswith("/verify.verified")
    assert (sounds / (ann.removeprefix("sound:ivr/") + ".wav")).read_bytes() == b"RIFFThank you, Ann."
    assert await media.uri("en", greeting("Ann")) == ann and spoken == ["Thank you, Ann."]
    await media.uri("en", greeting("Ben"))
    await media.uri("en", greeting("Cy"))
    assert not (sounds / ann.removeprefix("sound:ivr/")).parent.exists()
    assert len(list((sounds / "call").iterdir())) == 2


async def test_a_recording_in_the_sounds_directory_wins_and_plain_prompts_play_by_name(tmp_path):
    sounds = tmp_path / "ivr"
    (sounds / "en").mkdir(parents=True)
    (sounds / "en" / "verify.verified.wav").write_bytes(b"RIFF")
    media, spoken = resolver(sounds)
    assert await media.uri("en", greeting("Ann")) == "sound:ivr/en/verify.verified" and spoken == []
    assert await media.uri("en", PromptRef(key="main.menu")) == "sound:ivr/en/main.menu"


async def test_over_http_prompts_with_call_data_are_served_from_memory(tmp_path):
    media, spoken = resolver(tmp_path / "ivr", base_url="http://10.0.0.5:8090/media")
    uri = await media.uri("en", greeting("Ann"))
    assert uri.startswith("sound:http://10.0.0.5:8090/media/call/") and uri.endswith(".wav")
    assert not (tmp_path / "ivr" / "call").exists() and spoken == ["Thank you, Ann."]
