"""Agent sign-in: agent id + token from the settings, then a session cookie.

Why a cookie session rather than sending the token with every request: the
websocket cannot carry an Authorization header from a browser, and the token
should be typed once, not kept in page memory. The cookie is HttpOnly,
SameSite=Strict and scoped to /agent; sessions live in the controller's
memory (a restarted controller asks agents to sign in again).

Guessing is slowed down: after ``MAX_FAILURES`` wrong tokens for one agent
id, or ``MAX_ADDRESS_FAILURES`` from one client address, within
``FAILURE_WINDOW`` seconds, sign-in answers 429 until the window has passed.
An address may fail more often than an id because agents can share one
(an office behind NAT): one agent's typos must not lock out the others,
while one address trying many ids is still stopped. IPv6 addresses count by
their /64, which one client can hop around in. Only known agent ids get a
count of their own, and the table of addresses is bounded: guessing must
not grow memory.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections import deque
from dataclasses import dataclass

from ivr.config import AgentAccount

COOKIE = "ivr_agent"
MAX_FAILURES = 5           # per known agent id
MAX_ADDRESS_FAILURES = 20  # per client address
FAILURE_WINDOW = 300.0
MAX_TRACKED = 10_000  # client addresses with recent failures, at most


@dataclass(frozen=True)
class AgentSession:
    agent: AgentAccount
    expires: float


class Throttled(Exception):
    """Too many wrong tokens lately for this agent id or address."""


class FailureCounts:
    """Recent failures per key within `FAILURE_WINDOW`, for at most `max_keys` keys."""

    def __init__(self, limit: int, max_keys: int | None = None):
        self.limit = limit
        self.max_keys = max_keys
        self._times: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._times)

    def reached(self, key: str, now: float) -> bool:
        times = self._times.get(key)
        while times and times[0] < now - FAILURE_WINDOW:
            times.popleft()
        return times is not None and len(times) >= self.limit

    def add(self, key: str, now: float) -> None:
        self._times.setdefault(key, deque(maxlen=self.limit)).append(now)
        self._forget_old(now)

    def clear(self, key: str) -> None:
        self._times.pop(key, None)

    def _forget_old(self, now: float) -> None:
        """Past `max_keys`, drop the keys with nothing in the window, then the oldest."""
        if self.max_keys is None or len(self._times) <= self.max_keys:
            return
        for key in [k for k, times in self._times.items() if not times or times[-1] < now - FAILURE_WINDOW]:
            del self._times[key]
        while len(self._times) > self.max_keys:
            del self._times[next(iter(self._times))]


class Accounts:
    def __init__(self, agents: list[AgentAccount], session_hours: float = 10.0):
        self.agents = {a.id: a for a in agents}
        self.session_seconds = session_hours * 3600
        self.sessions: dict[str, AgentSession] = {}
        # Kept apart so that guessing from many addresses cannot push an agent id's count out of the table.
        self._agent_failures = FailureCounts(MAX_FAILURES)
        self._address_failures = FailureCounts(MAX_ADDRESS_FAILURES, MAX_TRACKED)

    def sign_in(self, agent_id: str, token: str, address: str, now: float | None = None) -> str | None:
        """A new session id, or None for a wrong id/token; raises Throttled when guessing.

        `address` is the client's own address (behind a proxy, the one it reported).
        """
        now = time.time() if now is None else now
        agent = self.agents.get(agent_id)
        client = address_key(address)
        # Unknown ids count against the address only: one entry per guessed id grew without end.
        agent_locked = agent is not None and self._agent_failures.reached(agent.id, now)
        if agent_locked or self._address_failures.reached(client, now):
            raise Throttled()
        expected = agent.token.get_secret_value() if agent else secrets.token_hex(16)
        if not hmac.compare_digest(expected.encode(), token.encode()) or agent is None:
            self._address_failures.add(client, now)
            if agent is not None:
                self._agent_failures.add(agent.id, now)
            return None
        self._agent_failures.clear(agent.id)  # the address's count ages out: signing in must not reset it
        session_id = secrets.token_urlsafe(32)
        self.sessions[session_id] = AgentSession(agent, now + self.session_seconds)
        self._expire(now)
        return session_id

    def agent_for(self, session_id: str | None, now: float | None = None) -> AgentAccount | None:
        if not session_id:
            return None
        session = self.sessions.get(session_id)
        if session is None:
            return None
        if session.expires < (time.time() if now is None else now):
            del self.sessions[session_id]
            return None
        return session.agent

    def sign_out(self, session_id: str | None) -> None:
        if session_id:
            self.sessions.pop(session_id, None)

    def by_interface(self, interface: str) -> AgentAccount | None:
        """The agent whose phone this queue member interface rings."""
        wanted = interface.lower()
        for agent in self.agents.values():
            if any(i.lower() == wanted for i in agent.interfaces):
                return agent
        return None

    def _expire(self, now: float) -> None:
        for session_id, session in list(self.sessions.items()):
            if session.expires < now:
                del self.sessions[session_id]


def address_key(address: str) -> str:
    """What the throttle counts an address as: itself, or for IPv6 its /64 (one client's usual share)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
