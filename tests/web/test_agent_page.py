"""The agent page over HTTP: nothing without a token, the pop only to the agent who answered.

A cancellation caller keys through the shipped flows (menu 4, date of
birth, reason 2 "too expensive", accepts the downgrade), waits in
save_specialists where agents 101 and 102 both ring; 101 picks up.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from ivr.web.caller_data import Contact
from tests.web.conftest import CALLER_ID, TOKENS, wait_for, walk_cancellation

pytestmark = pytest.mark.slow


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))   # cookies for 127.0.0.1


async def sign_in(session: aiohttp.ClientSession, base: str, agent: str, token: str) -> int:
    async with session.post(f"{base}/agent/signin", data={"agent": agent, "token": token},
                            allow_redirects=False) as resp:
        return resp.status


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, where=lambda m: True, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.receive_json(timeout=max(0.01, deadline - time.monotonic()))
        if message["type"] == kind and where(message):
            return message


async def test_nothing_without_a_token(desk_rig):
    base = desk_rig.base_url
    async with client() as s:
        async with s.get(f"{base}/agent/") as resp:
            assert resp.status == 401 and 'name="token"' in await resp.text()
        for path in ("/agent/static/desk.js", "/agent/static/desk.css", "/agent/api/queues", "/agent/api/calls",
                     "/agent/api/calls/1.2"):
            async with s.get(base + path) as resp:
                assert resp.status == 401, path
        async with s.post(f"{base}/agent/api/calls/1.2/outcome", json={"outcome": "saved"}) as resp:
            assert resp.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(f"{base}/agent/ws")
        assert refused.value.status == 401
        assert await sign_in(s, base, "101", "not-the-token") == 401
        assert await sign_in(s, base, "nobody", TOKENS["101"]) == 401
        async with s.get(f"{base}/agent/api/queues") as resp:
            assert resp.status == 401
        for _ in range(4):
            await sign_in(s, base, "101", "still-wrong")
        assert await sign_in(s, base, "101", TOKENS["101"]) == 429      # five wrong tokens for 101: wait


async def test_pop_reaches_only_the_agent_who_answered(desk_rig):
    base = desk_rig.base_url
    await desk_rig.history.add(CALLER_ID, Contact(at=time.time() - 3 * 86400, summary="payment: failed debit",
                                                  outcome="transferred"))
    async with client() as s101, client() as s102:
        assert await sign_in(s101, base, "101", TOKENS["101"]) == 303
        assert await sign_in(s102, base, "102", TOKENS["102"]) == 303
        ws101, ws102 = await s101.ws_connect(f"{base}/agent/ws"), await s102.ws_connect(f"{base}/agent/ws")
        hello = await next_of(ws101, "hello")
        assert hello["agent"] == {"id": "101", "name": "Mei Chen",
                                  "queues": ["save_specialists", "complaints", "customer_service"]}

        call = desk_rig.call()
        await walk_cancellation(call)
        assert call.continued.variables["IVR_QUEUE"] == "save_specialists"
        view = await next_of(ws102, "queues", lambda m: any(w["reason"] for w in m["queues"][0]["waiting"]))
        [waiting] = view["queues"][0]["waiting"]
        assert (waiting["priority"], waiting["reason"]) == (7, "downgrade_accepted")
        assert "Ann" not in str(view) and "+1555" not in str(view) and "4001" not in str(view)   # nothing personal
        await wait_for(lambda: len(call.ringing_agents()) == 2)
        await next_of(ws101, "queues", lambda m: m["queues"][0]["waiting"]
                      and m["queues"][0]["waiting"][0]["ringing_you"])

        answered = time.time()
        assert call.agent_answer("PJSIP/agent101")
        pop = (await next_of(ws101, "pop", timeout=1.0))["pop"]
        latency = time.time() - answered
        assert latency < 1.0
        print(f"pop latency after answer: {latency * 1000:.1f} ms")

        assert pop["call_id"] == call.channel_id and pop["agent_id"] == "101"
        assert pop["caller"] == {"caller_id": CALLER_ID, "name": "Ann Lee", "verified": True, "ani": "+15550100",
                                 "language": "en"}
        assert [(p["number"], p["product"], p["premium"], p["first_year"], p["orphan"], p["sales_channel"])
                for p in pop["policies"]] == [("40012345", "Term Life 20", 86.4, True, False, "bancassurance"),
                                              ("40077001", "Home Contents", 21.5, False, True, "agency")]
        assert [c["summary"] for c in pop["contacts"]] == ["payment: failed debit"]
        assert pop["routing"] == {"queue": "save_specialists", "priority": 7, "rule": "cancellation.downgrade",
                                  "reason": "downgrade_accepted", "detail": "",
                                  "preferred_agent": None}
        assert pop["cancellation"] == {"reason": "expensive",
                                       "downgrade": {"lower_premium": 52.0, "lower_sum_assured": 150000},
                                       "downgrade_answer": "accepted"}
        said = [(t["node"], t["heard"], t["matched"]) for t in pop["path"] if t["kind"] == "input"]
        assert said == [("menu", "#4", "cancel"), ("reason", "#2", "expensive"), ("downgrade", "#1", "yes")]
        assert pop["failed_at"] is None

        # agent 102 rang too but did not answer: no pop, no call data, no outcome
        with pytest.raises(asyncio.TimeoutError):
            await next_of(ws102, "pop", timeout=0.3)
        async with s102.get(f"{base}/agent/api/calls") as resp:
            assert await resp.json() == []
        async with s102.get(f"{base}/agent/api/calls/{call.channel_id}") as resp:
            assert resp.status == 404
        async with s102.post(f"{base}/agent/api/calls/{call.channel_id}/outcome", json={"outcome": "saved"}) as resp:
            assert resp.status == 404

        # 101's one click goes into the caller history; a second click corrects it
        async with s101.post(f"{base}/agent/api/calls/{call.channel_id}/outcome",
                             json={"outcome": "saved"}) as resp:
            assert resp.status == 200
        async with s101.post(f"{base}/agent/api/calls/{call.channel_id}/outcome",
                             json={"outcome": "downgraded"}) as resp:
            assert resp.status == 200 and (await resp.json())["outcome"] == "downgraded"
        async with s101.post(f"{base}/agent/api/calls/{call.channel_id}/outcome",
                             json={"outcome": "sold-a-car"}) as resp:
            assert resp.status == 400
        async with s101.post(f"{base}/agent/api/calls/{call.channel_id}/outcome", data="outcome=saved") as resp:
            assert resp.status == 415                                    # JSON only: no cross-site forms
        async with s101.post(f"{base}/agent/api/calls/{call.channel_id}/outcome", json={"outcome": "saved"},
                             headers={"Origin": "https://evil.example"}) as resp:
            assert resp.status == 403
        contacts = await desk_rig.history.recent(CALLER_ID)
        outcomes = [(c.kind, c.outcome, c.agent, c.call_id) for c in contacts if c.kind == "agent_outcome"]
        assert outcomes == [("agent_outcome", "downgraded", "101", call.channel_id)]
        await next_of(ws101, "outcome", lambda m: m["outcome"] == "downgraded")

        call.agent_hangup()
        assert (await next_of(ws101, "call"))["status"] == "ended"
        await ws101.close()
        await ws102.close()


async def test_sign_out_ends_the_session(desk_rig):
    base = desk_rig.base_url
    async with client() as s:
        assert await sign_in(s, base, "102", TOKENS["102"]) == 303
        async with s.get(f"{base}/agent/") as resp:
            assert resp.status == 200 and "desk.js" in await resp.text()
        async with s.post(f"{base}/agent/signout", allow_redirects=False) as resp:
            assert resp.status == 303
        async with s.get(f"{base}/agent/api/queues") as resp:
            assert resp.status == 401


def test_guessing_agent_ids_does_not_grow_memory():
    """One failure entry per distinct guessed id grew without end (40 addresses x 6 tries: +97 MB)."""
    from pydantic import SecretStr

    from ivr.config import AgentAccount
    from ivr.web.accounts import MAX_TRACKED, Accounts, Throttled

    accounts = Accounts([AgentAccount(id="101", name="Mei", token=SecretStr("t" * 16))])

    def guess(agent_id: str, address: str, now: float) -> None:
        try:
            accounts.sign_in(agent_id, "wrong", address, now=now)
        except Throttled:
            pass

    for n in range(2000):
        guess(f"guess-{n}" * 50, "10.0.0.1", 1000.0 + n * 0.01)
    assert len(accounts._address_failures) == 1  # the address; no entry per guessed id
    for n in range(MAX_TRACKED + 500):
        guess(f"other-{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 2000.0 + n * 0.001)
    assert len(accounts._address_failures) <= MAX_TRACKED


async def test_a_huge_sign_in_form_is_refused_and_logs_a_short_line(desk_rig, caplog):
    import logging

    base = desk_rig.base_url
    with caplog.at_level(logging.INFO, logger="ivr.web"):
        async with client() as s:
            async with s.post(f"{base}/agent/signin", data={"agent": "x" * 1_000_000, "token": "t"},
                              allow_redirects=False) as resp:
                assert resp.status == 413

            async def chunks():
                for _ in range(100):
                    yield b"agent=" + b"z" * 10_000

            async with s.post(f"{base}/agent/signin", data=chunks(), allow_redirects=False,
                              headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
                assert resp.status == 411  # no length: not read at all
            assert await sign_in(s, base, "y" * 3000, "wrong") == 401
    lines = [r.getMessage() for r in caplog.records if "sign-in" in r.getMessage()]
    assert lines and all(len(line) < 200 for line in lines), lines


async def test_pop_in_outbound_mode_comes_through_the_desks_persistent_websocket(tmp_path, redis_url):
    """Asterisk's per-call websocket carries nothing after the caller leaves Stasis for the queue; the
    controller subscribed the desk's persistent application (ari-outbound.conf [ivr-desk-outbound]) to the
    caller's channel first, so who answered reaches the agent page over that one."""
    from tests.web.conftest import make_desk_rig

    async with make_desk_rig(tmp_path, redis_url, outbound=True) as rig, client() as s101:
        assert await sign_in(s101, rig.base_url, "101", TOKENS["101"]) == 303
        ws101 = await s101.ws_connect(f"{rig.base_url}/agent/ws")
        await next_of(ws101, "hello")
        call = rig.call()
        await walk_cancellation(call)
        assert call.continued.variables["IVR_QUEUE"] == "save_specialists"
        await wait_for(lambda: len(call.ringing_agents()) == 2)
        assert call.agent_answer("PJSIP/agent101")
        pop = (await next_of(ws101, "pop", timeout=2.0))["pop"]
        assert pop["call_id"] == call.channel_id and pop["agent_id"] == "101"
        assert pop["caller"]["caller_id"] == CALLER_ID and pop["routing"]["queue"] == "save_specialists"
        assert pop["cancellation"]["reason"] == "expensive"
        call.agent_hangup()
        assert (await next_of(ws101, "call"))["status"] == "ended"
        await ws101.close()
