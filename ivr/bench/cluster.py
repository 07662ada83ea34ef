"""Several `ivr serve` behind HAProxy on this machine, as asterisk-conf/scale-out deploys them.

For the failover tests and `ivr bench calls --controllers N`: real processes
(controllers in outbound mode, Debian's haproxy with the shipped haproxy.cfg,
only its addresses changed), so that a controller can be killed with SIGKILL
and the balancer and Asterisk's reconnect do the rest.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from ivr.redis_server import free_port
from ivr.sim import SimulatorConfig
from ivr.sim.config import parse_outbound_websockets

ROOT = Path(__file__).resolve().parents[2]
SCALE_OUT = ROOT / "asterisk-conf" / "scale-out"
HAPROXY_CFG = SCALE_OUT / "haproxy.cfg"
OUTBOUND_PATH = "/ari/outbound"
OUTBOUND_USER = "asterisk"


def haproxy_config(listen: int, controllers: Sequence[int], template: str | None = None, maxconn: int = 4000) -> str:
    """The shipped haproxy.cfg with its frontend on `listen`, one server per controller port, and
    `maxconn` within what an unprivileged process may open (haproxy wants 2 descriptors a connection)."""
    text = template if template is not None else HAPROXY_CFG.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s*maxconn\s+)\d+", lambda m: f"{m.group(1)}{maxconn}", text, count=1)
    text = re.sub(r"(?m)^(\s*bind\s+)\S+", lambda m: f"{m.group(1)}127.0.0.1:{listen}", text, count=1)
    lines = []
    for line in text.splitlines():
        server = re.match(r"(\s*server\s+ctl(\d+)\s+)\S+(.*)", line)
        if server is None:
            lines.append(line)
        elif int(server.group(2)) <= len(controllers):  # ctlN: the N-th controller here; the rest are left out
            lines.append(f"{server.group(1)}127.0.0.1:{controllers[int(server.group(2)) - 1]}{server.group(3)}")
    extra = [f"    server ctl{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(controllers)
             if not re.search(rf"(?m)^\s*server\s+ctl{i + 1}\s", text)]  # more controllers than shipped lines
    if extra:
        at = max(i for i, line in enumerate(lines) if line.strip().startswith("server ") and "backup" not in line
                 and _backend_of(lines, i) == "controllers")
        lines[at + 1:at + 1] = extra
    text = "\n".join(lines).rstrip("\n") + "\n"
    return text.replace("log stdout format raw local0 warning", "log stderr format raw local0 warning")


def _backend_of(lines: list[str], index: int) -> str:
    """The backend section line `index` is in."""
    for line in reversed(lines[: index + 1]):
        if line.startswith("backend "):
            return line.split()[1]
    return ""


def simulator_config(sounds: Path, uri: str, password: str, *, system_name: str = "",
                     asterisk_id: str = "02:fc:00:00:00:01", api_docs: Path | None = None) -> SimulatorConfig:
    """A simulated Asterisk with the shipped ari-outbound.conf and websocket_client.conf, its
    websockets pointed at `uri` (the balancer, or one controller) with `password`."""
    client = (SCALE_OUT / "websocket_client.conf").read_text(encoding="utf-8")
    client = client.replace("ws://127.0.0.1:8091/ari/outbound", uri)
    client = client.replace("CHANGE_ME_not_a_real_websocket_password", password)
    websockets = parse_outbound_websockets((SCALE_OUT / "ari-outbound.conf").read_text(encoding="utf-8"), client)
    return SimulatorConfig(sounds_dirs=[sounds], outbound_websockets=websockets, system_name=system_name,
                           asterisk_id=asterisk_id, strict=api_docs is not None, api_docs_dir=api_docs)


def haproxy_available() -> str | None:
    """Debian installs it in /usr/sbin, which an unprivileged PATH may lack."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")


class Cluster:
    """`count` controllers and the balancer in front of them; `uri` is what Asterisk connects to."""

    def __init__(self, count: int, workdir: Path, redis_url: str, env: dict[str, str] | None = None,
                 password: str = "cluster-test-password") -> None:
        self.count = count
        self.workdir = workdir
        self.redis_url = redis_url
        self.env = dict(env or {})
        self.password = password
        self.listen = free_port()
        self.ports = [free_port() for _ in range(count)]
        self.controllers: list[subprocess.Popen[bytes] | None] = []
        self.haproxy: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.listen}{OUTBOUND_PATH}"

    async def start(self, timeout: float = 60.0) -> None:
        binary = haproxy_available()
        if binary is None:
            raise RuntimeError("haproxy is not installed (Debian: apt install haproxy)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(haproxy_config(self.listen, self.ports), encoding="utf-8")
        self.controllers = [self._controller(i) for i in range(self.count)]
        self.haproxy = subprocess.Popen([binary, "-f", str(cfg), "-db"], stdout=(self.workdir / "haproxy.log").open("ab"),
                                        stderr=subprocess.STDOUT)
        await asyncio.gather(*(self.wait_healthy(i, timeout) for i in range(self.count)))
        await self._wait_balancer(timeout)

    def _controller(self, index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, "IVR_ARI_MODE": "outbound", "IVR_ARI_OUTBOUND_PASSWORD": self.password,
               "IVR_ARI_OUTBOUND_USER": OUTBOUND_USER, "IVR_ARI_OUTBOUND_PATH": OUTBOUND_PATH,
               "IVR_HTTP_PORT": str(self.ports[index]), "IVR_REDIS_URL": self.redis_url,
               "IVR_CONTROLLER_ID": f"ctl{index + 1}"}
        env.setdefault("IVR_SPEECH", "off")
        log = (self.workdir / f"controller{index + 1}.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve"], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)

    async def wait_healthy(self, index: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.ports[index]}/health"
        async with aiohttp.ClientSession() as session:
            while True:
                process = self.controllers[index]
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"controller {index + 1} exited ({process.returncode}): "
                                       f"see {self.workdir / f'controller{index + 1}.log'}")
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"controller {index + 1} not healthy in {timeout:.0f} s")
                await asyncio.sleep(0.1)

    async def _wait_balancer(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.listen)
                writer.close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("haproxy never listened") from None
                await asyncio.sleep(0.05)

    def kill(self, index: int) -> None:
        """SIGKILL one controller, as a host dying would."""
        process = self.controllers[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=5)

    def pids(self) -> list[int]:
        return [p.pid for p in self.controllers if p is not None and p.poll() is None]

    def stop(self) -> None:
        for process in [*self.controllers, self.haproxy]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.controllers, self.haproxy]:
            if process is not None:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
