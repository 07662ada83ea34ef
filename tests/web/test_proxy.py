"""The agent page behind a TLS proxy: X-Forwarded headers believed from trusted proxies only.

What a probe found behind the README's proxy: sign-in was refused (the
browser's https Origin against the http the controller saw), the session
cookie lacked Secure, and five wrong tokens from anyone locked out every
agent, because all of them came from the proxy's one address.

The page runs on its own here (no controller, no Asterisk): the test client
connects from 127.0.0.1, which plays the proxy when it is trusted and a
client talking straight to the controller when it is not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from http.cookies import Morsel
from ipaddress import ip_network
from typing import cast
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.config import ConfigError, Settings
from ivr.web.accounts import COOKIE, MAX_ADDRESS_FAILURES, MAX_FAILURES, Accounts, Throttled
from ivr.web.desk import AgentDesk
from ivr.web.proxy import TrustedProxies, parse_address
from ivr.web.server import AgentPage
from tests.web.conftest import TOKENS, agents

PUBLIC = "agents.example.com"
PUBLIC_ORIGIN = f"https://{PUBLIC}"


class NoDesk:
    """Signing in and out never reaches the desk."""


@contextlib.asynccontextmanager
async def page_behind(trusted: list[str]) -> AsyncIterator[str]:
    page = AgentPage(Accounts(agents()), cast(AgentDesk, NoDesk()), TrustedProxies.parse(trusted))
    app = web.Application()
    app.add_routes(page.routes())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def via_proxy(client: str = "203.0.113.7", **extra: str) -> dict[str, str]:
    """What nginx or HAProxy add in front of the page (README), for a browser at `client`."""
    return {"X-Forwarded-For": client, "X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC,
            "Origin": PUBLIC_ORIGIN, **extra}


async def sign_in(base: str, agent: str, token: str, headers: dict[str, str]) -> tuple[int, Morsel | None]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.post(f"{base}/agent/signin", data={"agent": agent, "token": token}, headers=headers,
                          allow_redirects=False) as resp:
            return resp.status, resp.cookies.get(COOKIE)


# --- the probes -----------------------------------------------------------------------


async def test_sign_in_through_a_trusted_proxy_succeeds_with_a_secure_cookie():
    async with page_behind(["127.0.0.1"]) as base:
        status, cookie = await sign_in(base, "101", TOKENS["101"], via_proxy())
        assert status == 303 and cookie is not None
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
            session = {"Cookie": f"{COOKIE}={cookie.value}"}
            async with s.get(f"{base}/agent/", headers={**via_proxy(), **session}) as resp:
                assert resp.status == 200 and "desk.js" in await resp.text()
            async with s.post(f"{base}/agent/signout", headers={**via_proxy(), **session},
                              allow_redirects=False) as resp:
                assert resp.status == 303


async def test_a_proxy_passing_the_public_host_as_host_works_too():
    """nginx `proxy_set_header Host $host;` rather than X-Forwarded-Host; ``:443`` is the https origin's port."""
    async with page_behind(["127.0.0.0/8"]) as base:
        for host in (PUBLIC, f"{PUBLIC}:443"):
            headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "Host": host,
                       "Origin": PUBLIC_ORIGIN}
            status, cookie = await sign_in(base, "101", TOKENS["101"], headers)
            assert status == 303 and cookie is not None and cookie["secure"], host


async def test_forwarded_headers_from_an_untrusted_address_are_ignored():
    async with page_behind(["192.0.2.10"]) as base:
        assert (await sign_in(base, "101", TOKENS["101"], via_proxy()))[0] == 403   # http://127.0.0.1:port is ours
        status, cookie = await sign_in(base, "101", TOKENS["101"], {"X-Forwarded-Proto": "https"})
        assert status == 303 and cookie is not None and not cookie["secure"]


async def test_wrong_tokens_for_one_agent_behind_the_proxy_do_not_lock_out_another():
    async with page_behind(["127.0.0.1"]) as base:
        for _ in range(MAX_FAILURES):
            assert (await sign_in(base, "101", "wrong-token-101", via_proxy("203.0.113.7")))[0] == 401
        assert (await sign_in(base, "101", TOKENS["101"], via_proxy("203.0.113.8")))[0] == 429   # the id waits
        assert (await sign_in(base, "102", TOKENS["102"], via_proxy("203.0.113.8")))[0] == 303
        assert (await sign_in(base, "102", TOKENS["102"], via_proxy("203.0.113.7")))[0] == 303   # same office NAT


async def test_one_client_address_trying_many_ids_is_throttled():
    async with page_behind(["127.0.0.1"]) as base:
        for n in range(MAX_ADDRESS_FAILURES):
            assert (await sign_in(base, f"guess-{n}", "wrong-token", via_proxy("203.0.113.9")))[0] == 401
        assert (await sign_in(base, "101", TOKENS["101"], via_proxy("203.0.113.9")))[0] == 429
        assert (await sign_in(base, "101", TOKENS["101"], via_proxy("203.0.113.10")))[0] == 303


async def test_x_forwarded_for_from_an_untrusted_client_does_not_change_the_counted_address():
    async with page_behind(["192.0.2.10"]) as base:
        for n in range(MAX_ADDRESS_FAILURES):
            await sign_in(base, f"guess-{n}", "wrong-token", {"X-Forwarded-For": f"198.51.100.{n}"})
        assert (await sign_in(base, "101", TOKENS["101"], {"X-Forwarded-For": "198.51.100.200"}))[0] == 429


async def test_addresses_a_client_wrote_left_of_the_proxy_are_not_believed():
    async with page_behind(["127.0.0.1"]) as base:
        for n in range(MAX_ADDRESS_FAILURES):
            spoofed = via_proxy(f"198.51.100.{n}, 203.0.113.7")   # the client's own X-Forwarded-For, appended to
            await sign_in(base, f"guess-{n}", "wrong-token", spoofed)
        assert (await sign_in(base, "101", TOKENS["101"], via_proxy("198.51.100.200, 203.0.113.7")))[0] == 429


# --- the pieces -------------------------------------------------------------------------


def test_the_client_is_the_right_most_address_that_is_not_a_proxy():
    proxies = TrustedProxies([ip_network("10.0.0.0/8"), ip_network("::1/128")])
    assert proxies.client_address("10.0.0.1", ["203.0.113.7, 10.0.0.2"]) == "203.0.113.7"
    assert proxies.client_address("10.0.0.1", ["1.2.3.4, 203.0.113.7", "10.0.0.2"]) == "203.0.113.7"
    assert proxies.client_address("10.0.0.1", ["10.0.0.3, 10.0.0.2"]) == "10.0.0.3"          # all ours
    assert proxies.client_address("10.0.0.1", ["203.0.113.7, not-an-ip, 10.0.0.2"]) == "10.0.0.2"
    assert proxies.client_address("10.0.0.1", ["[2001:db8::7]:51000"]) == "2001:db8::7"
    assert proxies.client_address("10.0.0.1", ["203.0.113.7:51000"]) == "203.0.113.7"
    assert proxies.client_address("10.0.0.1", []) == "10.0.0.1"
    assert proxies.trusts(parse_address("::ffff:10.1.2.3")) and not proxies.trusts(parse_address("11.0.0.1"))
    assert parse_address(None) is None and parse_address("") is None


def test_trusted_proxies_come_from_the_settings_and_a_wrong_one_is_refused():
    environment = {k: v for k, v in os.environ.items() if k not in ("IVR_CONFIG", "IVR_TRUSTED_PROXIES")}
    with mock.patch.dict(os.environ, environment, clear=True):
        assert Settings().trusted_proxies == []
    with mock.patch.dict(os.environ, {**environment, "IVR_TRUSTED_PROXIES": '["127.0.0.1", "10.0.0.0/24", "::1"]'},
                         clear=True):
        entries = Settings().trusted_proxies
    assert [str(n) for n in TrustedProxies.parse(entries).networks] == ["127.0.0.1/32", "10.0.0.0/24", "::1/128"]
    with pytest.raises(ConfigError, match="proxy.example"):
        TrustedProxies.parse(["10.0.0.1", "proxy.example"])


def test_ipv6_clients_count_by_their_64():
    accounts = Accounts(agents())
    for n in range(MAX_ADDRESS_FAILURES):
        assert accounts.sign_in(f"guess-{n}", "wrong", f"2001:db8:1:2::{n + 1:x}", now=1000.0) is None
    with pytest.raises(Throttled):
        accounts.sign_in("101", TOKENS["101"], "2001:db8:1:2:ffff::1", now=1001.0)
    assert accounts.sign_in("101", TOKENS["101"], "2001:db8:1:3::1", now=1001.0)


def test_signing_in_clears_the_id_but_not_the_address():
    accounts = Accounts(agents())
    for _ in range(MAX_FAILURES - 1):
        accounts.sign_in("101", "wrong", "203.0.113.7", now=1000.0)
    assert accounts.sign_in("101", TOKENS["101"], "203.0.113.7", now=1001.0)
    for _ in range(MAX_FAILURES - 1):
        accounts.sign_in("101", "wrong", "203.0.113.8", now=1002.0)
    assert accounts.sign_in("101", TOKENS["101"], "203.0.113.8", now=1003.0)   # its count began again
    for n in range(MAX_ADDRESS_FAILURES - MAX_FAILURES + 1):
        accounts.sign_in(f"guess-{n}", "wrong", "203.0.113.7", now=1004.0)
    with pytest.raises(Throttled):
        accounts.sign_in("102", TOKENS["102"], "203.0.113.7", now=1005.0)
