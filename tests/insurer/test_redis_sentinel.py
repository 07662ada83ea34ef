"""Redis that fails over: a primary, a replica and three Sentinels (Debian's redis-sentinel, or
`redis-server --sentinel`), reached through `IVR_REDIS_URL=redis+sentinel://...`. The primary is
killed (SIGKILL) in the middle of a call; Sentinel promotes the replica; the same client object
finds it, the call's saved state is read back and new writes land on the new primary."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis
from redis.exceptions import RedisError

from ivr import redisconn
from ivr.controller.step_audio import StepAudio
from ivr.engine.state import CallState
from ivr.redis_server import free_port
from ivr.sealing import Sealer
from ivr.store import RedisCallStore
from tests.conftest import ROOT

SERVICE = "ivrtest"
DOWN_AFTER_MS = 1000


def _sentinel_command() -> list[str] | None:
    """Debian's redis-sentinel (package redis-sentinel), else the same binary in sentinel mode (redis-server)."""
    if shutil.which("redis-sentinel"):
        return [shutil.which("redis-sentinel") or "redis-sentinel"]
    if shutil.which("redis-server"):
        return [shutil.which("redis-server") or "redis-server", "--sentinel"]
    return None


def _wait_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}: {log.read_text()[-2000:]}")


@dataclass
class Topology:
    """Where everything runs; `url` is what a deployer puts in IVR_REDIS_URL."""

    directory: Path
    servers: dict[int, subprocess.Popen]  # port → redis-server
    sentinels: dict[int, subprocess.Popen]  # port → sentinel
    primary: int
    replica: int

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{port}" for port in self.sentinels) + f"/{SERVICE}/0"

    async def sentinel_view(self) -> list[dict]:
        """What each Sentinel says of the service (port, flags, peers and replicas known)."""
        views = []
        for port in self.sentinels:
            client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                views.append(await client.sentinel_master(SERVICE))
            finally:
                await client.aclose()
        return views

    async def until(self, condition, what: str, timeout: float) -> float:
        """Polls the Sentinels until `condition(views)`; the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                if condition(await self.sentinel_view()):
                    return time.monotonic() - started
            except (RedisError, OSError):
                pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{what}: not within {timeout} s; Sentinels say {await self.sentinel_view()}")
            await asyncio.sleep(0.05)

    async def ready(self, timeout: float = 15.0) -> None:
        """Each Sentinel knows the other two and the replica (it cannot fail over before)."""
        await self.until(lambda views: all(int(v["num-other-sentinels"]) == len(self.sentinels) - 1
                                           and int(v["num-slaves"]) == 1 and int(v["port"]) == self.primary
                                           for v in views), "Sentinels found each other and the replica", timeout)

    async def promoted(self, timeout: float = 15.0) -> float:
        return await self.until(lambda views: all(int(v["port"]) == self.replica for v in views),
                                "the replica promoted by every Sentinel", timeout)

    def kill_primary(self) -> None:
        self.servers[self.primary].send_signal(signal.SIGKILL)
        self.servers[self.primary].wait(timeout=5)


@pytest.fixture
def topology(tmp_path) -> Iterator[Topology]:
    sentinel = _sentinel_command()
    if sentinel is None or not shutil.which("redis-server"):
        pytest.skip("no redis-server nor redis-sentinel on PATH (apt-get install redis-server redis-sentinel)")
    directory = tmp_path / "redis"
    directory.mkdir()
    processes: list[subprocess.Popen] = []

    def start(args: list[str], port: int, name: str) -> subprocess.Popen:
        log = directory / f"{name}.log"
        process = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=directory)
        processes.append(process)
        _wait_port(port, process, log)
        return process

    try:
        primary, replica = free_port(), free_port()
        servers = {}
        for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)])):
            servers[port] = start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(directory), "--dbfilename", f"{port}.rdb",
                                   *extra], port, f"redis-{port}")
        sentinels = {}
        for _ in range(3):
            port = free_port()
            conf = directory / f"sentinel-{port}.conf"  # Sentinel rewrites its file: one each, writable
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                            f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                            f"sentinel failover-timeout {SERVICE} 3000\n"
                            f"sentinel parallel-syncs {SERVICE} 1\n")
            sentinels[port] = start([sentinel[0], str(conf), *sentinel[1:]], port, f"sentinel-{port}")
        yield Topology(directory, servers, sentinels, primary, replica)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


def _state(node: str, **variables: str) -> CallState:
    return CallState(call_id="c-failover", release="r", flow="verify", node=node, language="en", vars=variables)


@pytest.mark.slow
async def test_the_primary_dies_mid_call_and_the_same_store_goes_on_on_the_promoted_replica(topology, caplog):
    await asyncio.wait_for(topology.ready(), 20)
    store = RedisCallStore.from_url(topology.url, Sealer.generate())
    client = store.client
    try:
        before = _state("ask_dob", caller="P1")
        await store.save(before, StepAudio(call_id=before.call_id, played=1, sent_at=0.0, prompts=[]))
        assert await store.load(before.call_id) == before
        assert client.connection_pool.master_address == ("127.0.0.1", topology.primary)
        for _ in range(20):  # the replica has the state (replication is asynchronous: WAIT for it)
            if await client.execute_command("WAIT", 1, 500) == 1:
                break
        else:
            raise AssertionError("the replica never acknowledged the state")

        topology.kill_primary()
        killed = time.monotonic()
        # mid-failover the call's next step is saved: it fails fast, the guard says so once, the call goes on
        during = _state("ask_policy", caller="P1")
        await asyncio.wait_for(store.save(during), 3)
        assert time.monotonic() - killed < 3 and store.guard.down

        slowest, first_write = 0.0, None  # the same client object, once every 50 ms, until a write lands
        while first_write is None:
            attempt = time.monotonic()
            try:
                await client.set("ivr:test:failover", "written")
                first_write = time.monotonic() - killed
            except RedisError:
                await asyncio.sleep(0.05)
            slowest = max(slowest, time.monotonic() - attempt)
            assert time.monotonic() - killed < 15, "no write succeeded within 15 s of the primary's death"
        assert slowest < 2.5, f"a command during the failover hung for {slowest:.2f} s"
        promoted = await topology.promoted(timeout=5)
        assert client.connection_pool.master_address == ("127.0.0.1", topology.replica)

        await asyncio.sleep(max(0.0, store.guard.retry_after + 0.2 - (time.monotonic() - killed)))  # its pause
        assert await store.load(before.call_id) == before, "the state saved before the kill, read back"
        assert (await store.load_audio(before.call_id)).played == 1
        after = _state("ask_policy", caller="P1", policy="POL-1")
        await store.save(after)
        assert await store.load(after.call_id) == after and not store.guard.down
        messages = [r.getMessage() for r in caplog.records if "Redis" in r.getMessage()]
        assert messages == ["Redis unavailable (ConnectionError): calls go on without saved call state until it "
                            "is back", "Redis is back: saved call state resumes"]
        _report("store", first_write=first_write, slowest_command=slowest, sentinels_agree_after=promoted)
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_a_call_goes_on_while_redis_fails_over_and_its_state_is_saved_on_the_new_primary(topology, tmp_path,
                                                                                             caplog):
    """A keyed call through the controller: the primary dies at the menu, the caller keys on (the step saved
    mid-failover is skipped, logged once), and the steps after the promotion are saved on the new primary."""
    from tests.controller.conftest import heard, make_rig, saved_state

    await asyncio.wait_for(topology.ready(), 20)
    async with make_rig(tmp_path, topology.url) as rig:
        call = rig.call()
        await call.wait_until(lambda c: heard(c, "main.menu"), timeout=10)
        saved = await saved_state(topology.url, call.channel_id)
        assert saved is not None and saved.status != "ended"

        topology.kill_primary()
        killed = time.monotonic()
        await call.press("1")
        await call.wait_until(lambda c: heard(c, "verify.dob"), timeout=10)
        await call.press("1980", interval=0.5)
        await asyncio.wait_for(topology.promoted(), 12)  # the caller keys on meanwhile
        await call.press("0531", interval=0.5)
        await call.wait_until(lambda c: heard(c, "policy.what_next"), timeout=10)
        # the step saves of the last 5 s were skipped (the guard's pause after the failure); the next is tried
        await asyncio.sleep(max(0.0, 5.2 - (time.monotonic() - killed)))
        await call.press("9")
        await call.wait_until(lambda c: heard(c, "main.anything_else"), timeout=10)
        await call.press("2")
        await call.wait_ended(timeout=10)
        assert [p.media_uri.split("/")[-1] for p in call.prompts][-1] == "main.goodbye" and call.hungup_by == "app"
        state = await saved_state(topology.url, call.channel_id)
        assert state is not None and state.status == "ended" and state.result == {"outcome": "completed"}
        said = [r.getMessage() for r in caplog.records if r.name == "ivr.store"]
        assert said == ["Redis unavailable (ConnectionError): calls go on without saved call state until it is back",
                        "Redis is back: saved call state resumes"]
        direct = redis.Redis(port=topology.replica)
        try:
            assert await direct.exists(f"ivr:call:{call.channel_id}"), "written on the promoted replica"
        finally:
            await direct.aclose()


def _report(test: str, **seconds: float) -> None:
    out = ROOT / "test-artifacts" / "redis-failover.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as log:
        log.write(json.dumps({"test": test, "pid": os.getpid(),
                              **{k: round(v, 3) for k, v in seconds.items()}}) + "\n")


def test_sentinel_urls_are_read_as_documented():
    sentinels, service, node, sentinel = redisconn.parse_sentinel_url(
        "redis+sentinel://ivr:p%40ss@s1,s2:26380,[::1]:26381/mymaster/3?socket_timeout=0.5&sentinel_password=x")
    assert sentinels == [("s1", 26379), ("s2", 26380), ("::1", 26381)] and service == "mymaster"
    assert node == {"username": "ivr", "password": "p@ss", "db": 3, "socket_timeout": 0.5}
    assert sentinel == {"password": "x"}
    assert redisconn.parse_sentinel_url("REDIS+SENTINEL://s1/mymaster")[1:3] == ("mymaster", {"db": 0})
    for bad in ("redis+sentinel://s1/", "redis+sentinel://s1:x/m", "redis+sentinel:///m",
                "redis+sentinel://s1/m/zero", "redis+sentinel://s1/m/0/extra"):
        with pytest.raises(ValueError):
            redisconn.parse_sentinel_url(bad)
    with pytest.raises(ValueError, match="redis\\+sentinel://"):
        redisconn.connect("rediss+sentinel://s1/m")
    with pytest.raises(ValueError) as error:
        redisconn.parse_sentinel_url("redis+sentinel://ivr:secret@s1/m/x")
    assert "secret" not in str(error.value)
    plain = redisconn.connect("redis://127.0.0.1:6379/2")
    assert type(plain) is redis.Redis and plain.connection_pool.connection_kwargs["db"] == 2
