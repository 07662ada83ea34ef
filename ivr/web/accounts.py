"""Agent sign-in: agent id + token from the settings, then a session cookie.

Why a cookie session rather than sending the token with every request: the
websocket cannot carry an Authorization header from a browser, and the token
should be typed once, not kept in page memory. The cookie is HttpOnly,
SameSite=Strict and scoped to /agent; sessions live in the controller's
memory (a restarted controller asks agents to sign in again).

Guessing is slowed down: after ``MAX_FAILURES`` wrong tokens for one agent
id or from one address within ``FAILURE_WINDOW`` seconds, sign-in answers
429 until the window has passed. Only known agent ids get a count of their
own, and the table of counts is bounded: guessing must not grow memory.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

from ivr.config import AgentAccount

COOKIE = "ivr_agent"
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0
MAX_TRACKED = 10_000  # addresses and agent ids with recent failures, at most


@dataclass(frozen=True)
class AgentSession:
    agent: AgentAccount
    expires: float


class Throttled(Exception):
    """Too many wrong tokens lately for this agent id or address."""


class Accounts:
    def __init__(self, agents: list[AgentAccount], session_hours: float = 10.0):
        self.agents = {a.id: a for a in agents}
        self.session_seconds = session_hours * 3600
        self.sessions: dict[str, AgentSession] = {}
        self._failures: dict[str, deque[float]] = {}

    def sign_in(self, agent_id: str, token: str, address: str, now: float | None = None) -> str | None:
        """A new session id, or None for a wrong id/token; raises Throttled when guessing."""
        now = time.time() if now is None else now
        agent = self.agents.get(agent_id)
        # Unknown ids count against the address only: one entry per guessed id grew without end.
        keys = (f"agent:{agent_id}", f"addr:{address}") if agent else (f"addr:{address}",)
        if any(self._recent_failures(k, now) >= MAX_FAILURES for k in keys):
            raise Throttled()
        expected = agent.token.get_secret_value() if agent else secrets.token_hex(16)
        if not hmac.compare_digest(expected.encode(), token.encode()) or agent is None:
            for key in keys:
                self._failures.setdefault(key, deque(maxlen=MAX_FAILURES)).append(now)
            self._forget_old_failures(now)
            return None
        for key in keys:
            self._failures.pop(key, None)
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

    def _recent_failures(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and times[0] < now - FAILURE_WINDOW:
            times.popleft()
        return len(times)

    def _forget_old_failures(self, now: float) -> None:
        """Past `MAX_TRACKED` keys, drop those with nothing in the window, then the oldest."""
        if len(self._failures) <= MAX_TRACKED:
            return
        for key in [k for k, times in self._failures.items() if not times or times[-1] < now - FAILURE_WINDOW]:
            del self._failures[key]
        while len(self._failures) > MAX_TRACKED:
            del self._failures[next(iter(self._failures))]

    def _expire(self, now: float) -> None:
        for session_id, session in list(self.sessions.items()):
            if session.expires < now:
                del self.sessions[session_id]
