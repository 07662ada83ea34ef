"""`ivr demo` still walks its scripted callers, now routed by the rules over the sample book."""

from __future__ import annotations

import io

import redis.asyncio as redis

from ivr import demo


async def test_demo_calls_go_as_scripted_with_routing_and_report(redis_url, monkeypatch):
    url = redis_url.rsplit("/", 1)[0] + "/15"
    client = redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    monkeypatch.setenv("IVR_REDIS_URL", url)
    monkeypatch.setattr(demo, "_prompt_audio", lambda prompts, directory: demo.placeholder_audio(prompts, directory))
    out = io.StringIO()
    assert await demo.run_demo(out) == 0
    text = out.getvalue()
    assert f"{len(demo.DEMO_CALLS)} of {len(demo.DEMO_CALLS)} demo calls went as scripted" in text
    assert "rule failed_debit_first → payment" in text and "queued for orphan_desk" in text
    assert "ivr report for these calls" in text and "payment " in text
