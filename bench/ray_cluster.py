"""A real Ray cluster of several nodes on this machine, on loopback (tests/test_ray_build.py and
bench/ray_build.py).

    with local_cluster(nodes=2, cpus_per_node=1) as address:
        build_index_ray(settings, address=address)

Node 1 is ``ray start --head``, the others ``ray start --address …``; each gets explicit free
ports on :data:`HOST` (GCS, node manager, object manager, agents, metrics), no dashboard, no usage
report, ``--num-cpus`` and a small object store. All run with ``--block`` as children of this
process, each in its own process group, and are stopped by those groups (SIGTERM, then SIGKILL)
— never with ``ray stop``, which would stop every Ray on the machine. The head writes its
sessions under a short temporary directory that is deleted afterwards; the other nodes use the
head's, as Ray does by default.

Ray 2.60 authenticates every connection with a token: the cluster gets a fresh one, and this
process (the driver) holds it in ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN`` while the cluster runs.
Set them before anything here imports Ray: its config is read once per process.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from index.ray_build import LOCAL_HOST

ROOT = Path(__file__).resolve().parent.parent
#: The nodes' address (127.0.0.2 on Linux: Ray would replace 127.0.0.1 by the machine's network
#: address; index.ray_build.LOCAL_HOST).
HOST = LOCAL_HOST
NODE_PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                   "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on :data:`HOST` right now."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM the process group of each node, wait, then SIGKILL whatever is left of it."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(10)


def _alive_nodes(address: str) -> int:
    import ray

    ray.init(address=address, logging_level="ERROR")
    try:
        return sum(1 for node in ray.nodes() if node.get("Alive"))
    finally:
        ray.shutdown()


def _wait_for(address: str, n: int, procs: list[subprocess.Popen], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a Ray node exited: {log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(Exception):  # not up yet
            if _alive_nodes(address) >= n:
                return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster did not reach {n} nodes: {log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 1, *, object_store_mb: int = 256) -> Iterator[str]:
    """Start the cluster (see the module docstring), yield its address ``HOST:PORT``, stop it."""
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
               PYTHONPATH=pythonpath)
    common = ["--node-ip-address", HOST, "--num-cpus", str(cpus_per_node), "--num-gpus", "0",
              "--disable-usage-stats", "--object-store-memory", str(object_store_mb * 1024 * 1024), "--block"]
    ports = free_ports(1 + len(NODE_PORT_FLAGS) * nodes)
    address = f"{HOST}:{ports[0]}"
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for i in range(nodes):
            own = ports[1 + i * len(NODE_PORT_FLAGS): 1 + (i + 1) * len(NODE_PORT_FLAGS)]
            flags = [x for name, port in zip(NODE_PORT_FLAGS, own) for x in (name, str(port))]
            if i == 0:
                cmd = ["ray", "start", "--head", "--port", str(ports[0]), "--include-dashboard=false",
                       "--temp-dir", str(temp), *flags, *common]
            else:
                cmd = ["ray", "start", "--address", address, *flags, *common]
            log = temp / f"node{i}.log"
            logs.append(open(log, "w"))  # noqa: SIM115 - closed in finally
            procs.append(subprocess.Popen(cmd, env=env, stdout=logs[-1], stderr=subprocess.STDOUT,
                                          start_new_session=True))
            _wait_for(address, i + 1, procs, log)
        yield address
    finally:
        _stop(procs)
        for f in logs:
            f.close()
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
