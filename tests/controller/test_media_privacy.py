"""Prompts with call data are the call's alone (issue 11, item 5).

A probe fetched `/media/call/<sha256("en\\0Thank you, Ann.")[:32]>.wav` with no
secret: anyone reaching the port could test whether a name, a premium or a due
date had been spoken. Per-call audio is now named by a keyed hash of the call
and the text, removed when the call ends, and served only to Asterisk's
addresses when they are configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.ari import event_types as ari
from ivr.ari.models import Channel
from ivr.controller.media import MediaResolver
from ivr.controller.session import CallSession, Services
from ivr.engine.actions import PromptRef
from ivr.flow.catalog import load_flow_set
from tests.conftest import ROOT

BASE = "http://10.0.0.5:8090/media"
RELEASE, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")  # every prompt is resolved for its call's release


def keyed_with(key: bytes):
    """The shape of `Sealer.digest`: HMAC-SHA256 of purpose and value, hex, cut to size."""
    def digest(purpose: str, value: str, size: int = 24) -> str:
        return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()[:size]
    return digest


def resolver(sounds: Path, base_url: str | None = BASE, key: bytes = b"k" * 32, fetchers: tuple[str, ...] = ()):
    return MediaResolver(sounds, base_url, lambda text, language: b"RIFF" + text.encode(),
                         keyed_hash=keyed_with(key), fetchers=fetchers)


def greeting(name: str) -> PromptRef:
    return PromptRef(key="verify.verified", values={"caller.first_name": name})


def path_of(uri: str, base_url: str = BASE) -> str:
    return "/media" + uri.removeprefix("sound:" + base_url)


@contextlib.asynccontextmanager
async def served(media: MediaResolver):
    app = web.Application()
    app.add_routes(media.routes())
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_the_probe_by_a_plain_hash_of_the_text_finds_nothing(tmp_path):
    media = resolver(tmp_path)
    uri = await media.uri(RELEASE, "en", greeting("Ann"), "1712.42")
    probe = hashlib.sha256(b"en\0Thank you, Ann.").hexdigest()[:32]
    async with served(media) as client:
        assert (await client.get(f"/media/call/{probe}.wav")).status == 404
        real = await client.get(path_of(uri))
        assert real.status == 200 and await real.read() == b"RIFFThank you, Ann."
    assert probe not in uri


async def test_per_call_names_differ_by_call_and_by_key_and_suit_asterisk(tmp_path):
    one, other_key = resolver(tmp_path), resolver(tmp_path, key=b"x" * 32)
    ann_in_a = await one.uri(RELEASE, "en", greeting("Ann"), "call-a")
    ann_in_b = await one.uri(RELEASE, "en", greeting("Ann"), "call-b")
    assert ann_in_a != ann_in_b, "two calls saying the same words share no name"
    assert await other_key.uri(RELEASE, "en", greeting("Ann"), "call-a") != ann_in_a, "a name needs the key"
    assert await resolver(tmp_path).uri(RELEASE, "en", greeting("Ann"), "call-a") == ann_in_a, "a takeover with the key agrees"
    assert re.fullmatch(re.escape(f"sound:{BASE}/call/") + "[0-9a-f]{40}" + re.escape(".wav"), ann_in_a)
    short = await resolver(tmp_path, base_url="http://a/m").uri(RELEASE, "en", greeting("Ann"), "c")
    assert len(short.removeprefix("sound:")) > 41, "Asterisk 22 fails on media URLs shorter than about 41 characters"


async def test_a_call_that_ends_takes_its_audio_with_it(tmp_path):
    media = resolver(tmp_path)
    ended, other = await media.uri(RELEASE, "en", greeting("Ann"), "call-a"), await media.uri(RELEASE, "en", greeting("Ann"), "call-b")
    assert media.servable(ended)
    await media.end_call("call-a")
    assert not media.servable(ended) and media.servable(other)
    async with served(media) as client:
        assert (await client.get(path_of(ended))).status == 404
        assert (await client.get(path_of(other))).status == 200


async def test_in_the_sounds_directory_names_are_keyed_and_go_with_the_call(tmp_path):
    sounds = tmp_path / "ivr"
    media = resolver(sounds, base_url=None)
    ann_a, ann_b = await media.uri(RELEASE, "en", greeting("Ann"), "call-a"), await media.uri(RELEASE, "en", greeting("Ann"), "call-b")
    assert ann_a != ann_b and ann_a.endswith("/verify.verified")
    plain = hashlib.sha256(b"en\0Thank you, Ann.").hexdigest()[:32]
    assert plain not in ann_a and not (sounds / "call" / plain).exists()
    file_a, file_b = (sounds / (uri.removeprefix("sound:ivr/") + ".wav") for uri in (ann_a, ann_b))
    assert file_a.read_bytes() == b"RIFFThank you, Ann." and file_b.is_file()
    await media.end_call("call-a")
    assert not file_a.parent.exists() and file_b.is_file()
    assert await resolver(sounds, base_url=None, key=b"x" * 32).uri(RELEASE, "en", greeting("Ann"), "call-a") != ann_a


async def test_shared_prompts_keep_their_stable_names(tmp_path):
    media = resolver(tmp_path)
    assert await media.uri(RELEASE, "en", PromptRef(key="main.menu"), "call-a") == f"sound:{BASE}/prompts/en/main.menu.wav"
    assert await media.uri(RELEASE, "en", PromptRef(key="main.menu")) == f"sound:{BASE}/prompts/en/main.menu.wav"
    with pytest.raises(ValueError):
        await media.uri(RELEASE, "en", greeting("Ann"))  # call data without its call: it could never be removed


async def test_odd_per_call_paths_are_404_never_a_traceback(tmp_path):
    media = resolver(tmp_path)
    name = path_of(await media.uri(RELEASE, "en", greeting("Ann"), "call-a")).removeprefix("/media/call/").removesuffix(".wav")
    async with served(media) as client:
        for path in (f"/media/call/{name}%2f.wav", f"/media/call/..%2f{name}.wav", f"/media/call/{name}%00.wav",
                     f"/media/call/x/{name}.wav", f"/media/call/{name.upper()}.wav", f"/media/call/{name}",
                     "/media/call/%00.wav", "/media/call/..%2f..%2fetc%2fpasswd"):
            response = await client.get(path)
            assert response.status == 404, (path, response.status, await response.text())


async def test_only_asterisk_may_fetch_when_its_addresses_are_configured(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "main.menu.wav").write_bytes(b"RIFFmenu")
    refused, allowed = resolver(tmp_path, fetchers=("10.0.0.9",)), resolver(tmp_path, fetchers=("127.0.0.0/8", "::1"))
    for media, status in ((refused, 403), (allowed, 200)):
        uri = await media.uri(RELEASE, "en", greeting("Ann"), "call-a")
        async with served(media) as client:
            assert (await client.get(path_of(uri))).status == status
            assert (await client.get("/media/prompts/en/main.menu.wav")).status == status
    async with served(refused) as client:
        assert (await client.get("/media/call/0123.wav")).status == 403, "refused before any lookup"


def session_for(media: MediaResolver, channel_id: str) -> CallSession:
    services = Services(ari=SimpleNamespace(), store=SimpleNamespace(), backend=SimpleNamespace(), media=media, app="ivr")
    return CallSession(services, channel_id)


async def test_the_session_releases_its_audio_when_the_call_leaves_but_not_when_we_stop(tmp_path):
    """A controller that stops leaves its calls in Stasis for the next one: their audio stays."""
    media = resolver(tmp_path)
    gone, kept = await media.uri(RELEASE, "en", greeting("Ann"), "call-a"), await media.uri(RELEASE, "en", greeting("Ann"), "call-b")
    hung_up = session_for(media, "call-a")
    hung_up.submit(ari.StasisEnd(channel=Channel(id="call-a")))
    await asyncio.wait_for(hung_up.run(), 5)
    assert not media.servable(gone)
    stopped = session_for(media, "call-b")
    task = asyncio.create_task(stopped.run())
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert media.servable(kept)


async def test_a_transferred_call_heard_its_prompts_and_then_they_are_gone(tmp_path, redis_url):
    """Over HTTP, as Asterisk on another host: the caller keys 0 while a prompt with their data
    plays; it stops cleanly, the call goes to a person, and its audio is served no more."""
    pytest.importorskip("pyttsx3")
    import aiohttp

    from ivr.redis_server import free_port
    from tests.controller.conftest import make_rig

    port = free_port()
    async with make_rig(tmp_path, redis_url, http_port=port,
                        media_base_url=f"http://127.0.0.1:{port}/media") as rig:
        call = rig.call()
        await call.wait_prompt(2)
        await call.press("1")
        await call.wait_until(lambda c: any("verify.dob" in p.media_uri for p in c.prompts))
        await call.press("19800531", interval=0.12)
        await call.wait_until(lambda c: len(personal(c)) >= 3, timeout=30)
        urls = [p.media_uri.removeprefix("sound:") for p in personal(call)]
        async with aiohttp.ClientSession() as http:
            assert await statuses(http, urls) == [200] * len(urls)
            await call.press("0")
            await call.wait_continued()
            for _ in range(50):
                if await statuses(http, urls) == [404] * len(urls):
                    break
                await asyncio.sleep(0.1)
            assert await statuses(http, urls) == [404] * len(urls)
        assert personal(call)[-1].stopped, "the key stopped the prompt with the caller's data"
        assert [p.media_uri for p in call.prompts if p.state == "failed"] == []


def personal(call) -> list:
    return [p for p in call.prompts if "/media/call/" in p.media_uri]


async def statuses(http, urls: list[str]) -> list[int]:
    found = []
    for url in urls:
        async with http.get(url) as response:
            found.append(response.status)
    return found
