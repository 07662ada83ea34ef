"""Which media URI a prompt gets, and the per-call audio the controller leaves on disk."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from ivr.controller.media import STALE_SECONDS, MediaResolver
from ivr.engine.actions import PromptRef
from ivr.flow.catalog import load_flow_set
from tests.conftest import ROOT

RELEASE, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")  # every prompt is resolved for its call's release


def resolver(sounds: Path, base_url: str | None = None, cache_size: int = 512) -> tuple[MediaResolver, list[str]]:
    spoken: list[str] = []

    def synthesize(text: str, language: str) -> bytes:
        spoken.append(text)
        return b"RIFF" + text.encode()

    return MediaResolver(sounds, base_url, synthesize, cache_size=cache_size), spoken


def greeting(name: str) -> PromptRef:
    return PromptRef(key="verify.verified", values={"caller.first_name": name})


async def test_prompts_with_call_data_are_written_once_and_the_oldest_removed(tmp_path):
    sounds = tmp_path / "ivr"
    old, young = sounds / "call" / "left-hours-ago", sounds / "call" / "still-queued-in-asterisk"
    old.mkdir(parents=True)
    young.mkdir()
    os.utime(old, (time.time() - 2 * STALE_SECONDS,) * 2)
    media, spoken = resolver(sounds, cache_size=2)
    assert not old.exists(), "a starting controller clears old per-call audio"
    assert young.exists(), "but not what a call it takes over may still be playing"
    shutil.rmtree(young)
    ann = await media.uri(RELEASE, "en", greeting("Ann"), "call-1")
    assert ann.startswith("sound:ivr/call/") and ann.endswith("/verify.verified")
    assert (sounds / (ann.removeprefix("sound:ivr/") + ".wav")).read_bytes() == b"RIFFThank you, Ann."
    assert await media.uri(RELEASE, "en", greeting("Ann"), "call-1") == ann and spoken == ["Thank you, Ann."]
    await media.uri(RELEASE, "en", greeting("Ben"), "call-1")
    await media.uri(RELEASE, "en", greeting("Cy"), "call-1")
    assert not (sounds / ann.removeprefix("sound:ivr/")).parent.exists()
    assert len(list((sounds / "call").iterdir())) == 2


async def test_a_recording_in_the_sounds_directory_wins_and_plain_prompts_play_by_name(tmp_path):
    sounds = tmp_path / "ivr"
    (sounds / "en").mkdir(parents=True)
    (sounds / "en" / "verify.verified.wav").write_bytes(b"RIFF")
    media, spoken = resolver(sounds)
    assert await media.uri(RELEASE, "en", greeting("Ann"), "call-1") == "sound:ivr/en/verify.verified" and spoken == []
    assert await media.uri(RELEASE, "en", PromptRef(key="main.menu")) == "sound:ivr/en/main.menu"


async def test_over_http_prompts_with_call_data_are_served_from_memory(tmp_path):
    media, spoken = resolver(tmp_path / "ivr", base_url="http://10.0.0.5:8090/media")
    uri = await media.uri(RELEASE, "en", greeting("Ann"), "call-1")
    assert uri.startswith("sound:http://10.0.0.5:8090/media/call/") and uri.endswith(".wav")
    assert not (tmp_path / "ivr" / "call").exists() and spoken == ["Thank you, Ann."]


async def test_lengths_and_availability_of_what_a_call_was_played(tmp_path):
    """A controller taking over judges by a prompt's length whether the caller heard it all."""
    import io
    import wave

    sounds = tmp_path / "ivr"
    (sounds / "en").mkdir(parents=True)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(8000)
        wav.writeframes(b"\0\0" * 12000)
    (sounds / "en" / "main.menu.wav").write_bytes(buffer.getvalue())
    media, _ = resolver(sounds)
    assert media.seconds("sound:ivr/en/main.menu") == 1.5
    assert media.servable("sound:ivr/en/main.menu") and not media.servable("sound:ivr/en/main.welcome")
    remote, _ = resolver(sounds, base_url="http://10.0.0.5:8090/media")
    assert remote.seconds("sound:http://10.0.0.5:8090/media/prompts/en/main.menu.wav") == 1.5
    uri = await remote.uri(RELEASE, "en", greeting("Ann"), "call-1")
    assert remote.servable(uri) and remote.seconds(uri) is None  # served from memory; not a WAV in this test
    assert not remote.servable("sound:http://10.0.0.5:8090/media/call/0123.wav")


async def test_static_prompts_are_plain_names_only(tmp_path):
    """An encoded slash reached nested files; a NUL byte answered 500 with a traceback."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    sounds = tmp_path / "ivr"
    (sounds / "en" / "call" / "x").mkdir(parents=True)
    (sounds / "en" / "main.menu.wav").write_bytes(b"RIFFmenu")
    (sounds / "en" / "call" / "x" / "secret.wav").write_bytes(b"RIFFsecret")
    media, _ = resolver(sounds, base_url="http://10.0.0.5:8090/media")
    app = web.Application()
    app.add_routes(media.routes())
    async with TestClient(TestServer(app)) as client:
        assert (await (await client.get("/media/prompts/en/main.menu.wav")).read()) == b"RIFFmenu"
        for path in ("/media/prompts/en/call%2Fx%2Fsecret.wav", "/media/prompts/en/main.menu%00.wav",
                     "/media/prompts/en/%2e%2e%2fen%2fmain.menu.wav", "/media/prompts/..%2fivr/main.menu.wav",
                     "/media/call/%00.wav"):
            response = await client.get(path)
            assert response.status == 404, (path, response.status, await response.text())
