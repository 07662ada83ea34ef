"""The one place a Redis client is made from a URL: one Redis, or Redis Sentinel in front of a primary and replicas.

``redis://`` / ``rediss://`` / ``unix://`` URLs go to redis-py as they always
did. redis-py finds a primary through Sentinel (`redis.asyncio.sentinel`) but
has no URL for it, so this module reads one, in the form other Python projects
use (Redis-Sentinel-Url, python-socketio, prefect-redis)::

    redis+sentinel://[user:password@]host[:port][,host2[:port2]...]/service_name[/db][?options]

- the hosts are the Sentinels (port 26379 unless given), as many as there are;
- ``service_name`` is the name the Sentinels monitor (``sentinel monitor <name> ...``);
- ``user:password`` and the options (``socket_timeout=``, ``max_connections=``...,
  redis-py's own URL options) are for the Redis servers; ``sentinel_username=`` and
  ``sentinel_password=`` are for the Sentinels when they require a password.

The client asks the Sentinels for the primary on every new connection, so
after a failover it finds the promoted replica on its own, and the same client
object goes on serving the caller. A command caught mid-failover fails fast
(one retry, bounded timeouts) and the product's `RedisGuard` lets the call go on
without Redis until the new primary answers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import redis.asyncio as redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ConstantBackoff

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


class SentinelRedis(redis.Redis):
    """The primary of a Sentinel-watched service; closing it also closes the connections to the Sentinels."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        await self.connection_pool.sentinel_manager.aclose()  # type: ignore[attr-defined]


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith(SENTINEL_SCHEME + "://")


def connect(url: str, *, socket_timeout: float = 1.0, socket_connect_timeout: float = 1.0) -> redis.Redis:
    """A client for `url` (see the module's docstring); nothing is connected until the first command."""
    if not is_sentinel_url(url):
        if "sentinel" in url.split("://", 1)[0].lower():
            raise ValueError(f"unsupported Redis URL scheme in {url.split('://', 1)[0]!r}: "
                             f"use {SENTINEL_SCHEME}://host:26379[,host2:26379...]/service_name[/db]")
        return redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout)
    sentinels, service, node_options, sentinel_options = parse_sentinel_url(url)
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_connect_timeout}
    sentinel = Sentinel(sentinels, sentinel_kwargs={**timeouts, **sentinel_options})
    # one retry: a connection to a primary that died or was demoted is dropped and the command tried once more
    # on a freshly discovered primary, so a failover that finished between two commands goes unnoticed; during
    # the failover itself the command fails in milliseconds instead of waiting through redis-py's default retries
    options: dict[str, Any] = {**timeouts, "retry": Retry(ConstantBackoff(0.05), 1), **node_options}
    return sentinel.master_for(service, redis_class=SentinelRedis, **options)


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any], dict[str, Any]]:
    """`(sentinels, service_name, options for the Redis servers, options for the Sentinels)` of a sentinel URL."""
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    sentinels = [_host_port(item, url) for item in hostlist.split(",") if item]
    if not sentinels:
        raise ValueError(f"no Sentinel address in {_redacted(url)}")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError(f"a Sentinel URL names the service after the addresses, then optionally the database: "
                         f"{SENTINEL_SCHEME}://host:26379/service_name[/db], not {_redacted(url)}")
    service, db = path[0], path[1] if len(path) > 1 else "0"
    if not db.isdigit():
        raise ValueError(f"database {db!r} is not a number in {_redacted(url)}")
    query = parse_qs(parts.query)
    sentinel_options = {name: query.pop(name)[0] for name in _SENTINEL_OPTIONS if name in query}
    sentinel_options = {name.removeprefix("sentinel_"): value for name, value in sentinel_options.items()}
    # the servers' credentials, database and options, read by redis-py's own URL parser
    node = parse_url(f"redis://{userinfo + '@' if userinfo else ''}sentinel/{db}"
                     + (f"?{urlencode(query, doseq=True)}" if query else ""))
    node_options: dict[str, Any] = {k: v for k, v in node.items() if k not in ("host", "port")}
    return sentinels, service, node_options, sentinel_options


def _host_port(item: str, url: str) -> tuple[str, int]:
    host, port = item, ""
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host or (port and not port.isdigit()):
        raise ValueError(f"bad Sentinel address {item!r} in {_redacted(url)}")
    return host, int(port) if port else SENTINEL_PORT


def _redacted(url: str) -> str:
    """The URL without its passwords (nor its options), for error messages that end up in logs."""
    scheme, _, rest = url.partition("://")
    userinfo, at, hosts = rest.split("?", 1)[0].rpartition("@")
    return f"{scheme}://{userinfo.split(':', 1)[0] + ':***' if ':' in userinfo else userinfo}{at}{hosts}"
