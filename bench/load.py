"""Load test: N concurrent gradio_client users × M questions against ONE launched app.

    python -m bench.load                      # 16 users × 50 questions, app launched here on loopback
    python -m bench.load --users 4 --questions 5 --index DIR --corpus DIR
    python -m bench.load --url http://127.0.0.1:7860 --auth staff:secret   # an app already running

Each user is its own ``gradio_client.Client`` in its own thread. Questions are the development
questions (../shared/eval/dev_queries.jsonl), cycled, each user starting at another offset; each
question goes to the endpoint of its kind (which → /answer, compare → /compare, wording →
/wording, fact → /search), as staff would use the tabs. Bounded: users × questions requests and
``--timeout`` seconds in all (a request still pending at the deadline counts as an error); the
launched app only listens on 127.0.0.1 and is stopped at the end.

Output: a JSON report (``--out``, default bench/results/load.json) and a Markdown table with the
latency distribution (p50/p90/p95/p99/max) per endpoint and overall, errors, throughput and the
machine (CPU model, cores, RAM, load average before/after — other work on the machine shows there).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

# gradio_client sends its own usage telemetry to huggingface.co unless told not to; this is the
# *client* side (the app disables its analytics itself, see ui.py).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parent.parent
DEV_QUERIES = REPO.parent / "shared" / "eval" / "dev_queries.jsonl"
RESULTS = REPO / "bench" / "results"
ENDPOINT_BY_KIND = {"which": "/answer", "compare": "/compare", "wording": "/wording", "fact": "/search"}
FALLBACK_QUESTIONS = [
    {"kind": "which", "query": "学校給食センターをPFIで整備した自治体"},
    {"kind": "compare", "query": "公共施設の保有量の削減"},
    {"kind": "wording", "query": "職員一人ひとりがコストを意識する"},
    {"kind": "fact", "query": "火葬場の建て替えに民間資金を使う"},
]


@dataclass
class Call:
    """One request: which user, endpoint, question, how long, and the error if any."""

    user: int
    endpoint: str
    query: str
    seconds: float
    ok: bool
    error: str = ""


@dataclass
class Report:
    users: int
    questions_per_user: int
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    throughput_rps: float = 0.0
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False


# ── questions, machine ─────────────────────────────────────────────────────────────────────────


def load_questions(path: Path | None = DEV_QUERIES) -> list[dict[str, str]]:
    """``{"kind", "query"}`` dicts from a dev_queries.jsonl file (a small built-in set when absent)."""
    if path is None or not Path(path).is_file():
        return list(FALLBACK_QUESTIONS)
    from search.evaluate import read_jsonl

    return [{"kind": q.get("kind", "fact"), "query": q["query"]} for _, q in read_jsonl(path)]


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM and load average of this machine."""
    info: dict[str, Any] = {"python": platform.python_version(), "os": platform.platform()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Socket(s)"):
                info[k.strip()] = v.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info["cpu_count"] = os.cpu_count()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """n, mean, p50/p90/p95/p99 (linear interpolation) and max of ``values`` in seconds."""
    import numpy as np

    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    out = {"n": int(len(a)), "mean": float(a.mean())}
    for p in (50, 90, 95, 99):
        out[f"p{p}"] = float(np.percentile(a, p))
    out["max"] = float(a.max())
    return out


# ── the app ────────────────────────────────────────────────────────────────────────────────────


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_server(index: Path | None, corpus: Path | None, port: int, auth: str | None = None,
                  log: Path | None = None, ready_timeout: float = 600) -> tuple[subprocess.Popen, str]:
    """``python ui.py`` on 127.0.0.1:``port`` in a subprocess; returns (process, url) once it answers."""
    cmd = [sys.executable, str(REPO / "ui.py"), "--port", str(port)]
    if index:
        cmd += ["--index", str(index)]
    if corpus:
        cmd += ["--corpus", str(corpus)]
    if auth:
        cmd += ["--auth", auth]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GRADIO_ANALYTICS_ENABLED", None)  # the app must not depend on it
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited early (status {proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url + "/", timeout=5):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                stop_server(proc)
                raise RuntimeError(f"the app did not answer within {ready_timeout:.0f} s")
            time.sleep(0.5)


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the app this module started (by its pid)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


# ── the load ───────────────────────────────────────────────────────────────────────────────────


def _submit(client: Any, kind: str, query: str) -> tuple[str, Any]:
    endpoint = ENDPOINT_BY_KIND.get(kind, "/search")
    if endpoint == "/compare":
        return endpoint, client.submit(query, None, 4, api_name=endpoint)
    if endpoint == "/search":
        return endpoint, client.submit(query, 10, api_name=endpoint)
    return endpoint, client.submit(query, api_name=endpoint)


def _check(endpoint: str, out: Any) -> str:
    """An error text when the response does not have its endpoint's shape ("" when fine)."""
    key = {"/search": "results", "/answer": "rows", "/compare": "columns", "/wording": "hits"}[endpoint]
    if not isinstance(out, dict) or key not in out:
        return f"unexpected response: {str(out)[:200]}"
    return ""


def run_load(url: str, users: int = 16, questions_per_user: int = 50, questions: Sequence[dict[str, str]] | None = None,
             timeout: float = 1800, auth: tuple[str, str] | None = None) -> tuple[Report, list[Call]]:
    """``users`` concurrent clients, each asking ``questions_per_user`` questions; bounded by ``timeout``."""
    from gradio_client import Client

    qs = list(questions or load_questions())
    calls: list[Call] = []
    lock = threading.Lock()
    start = threading.Barrier(users + 1)
    deadline = [0.0]
    clients = [Client(url.rstrip("/") + "/", auth=auth, verbose=False) for _ in range(users)]

    def user(u: int) -> None:
        client = clients[u]
        start.wait()
        for i in range(questions_per_user):
            q = qs[(u * 7 + i) % len(qs)]
            t0 = time.monotonic()
            remaining = deadline[0] - t0
            endpoint = ENDPOINT_BY_KIND.get(q["kind"], "/search")
            if remaining <= 0:
                rec = Call(u, endpoint, q["query"], 0.0, False, "not run: time limit reached")
            else:
                try:
                    endpoint, job = _submit(client, q["kind"], q["query"])
                    err = _check(endpoint, job.result(timeout=remaining))
                    rec = Call(u, endpoint, q["query"], time.monotonic() - t0, not err, err)
                except Exception as e:  # noqa: BLE001 - every failure is a counted error
                    rec = Call(u, endpoint, q["query"], time.monotonic() - t0, False, f"{type(e).__name__}: {e}"[:300])
            with lock:
                calls.append(rec)

    threads = [threading.Thread(target=user, args=(u,), name=f"load-user-{u}", daemon=True) for u in range(users)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    deadline[0] = t0 + timeout
    start.wait()
    for t in threads:
        t.join(max(0.0, deadline[0] + 60 - time.monotonic()))
    wall = time.monotonic() - t0
    for c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass

    rep = Report(users=users, questions_per_user=questions_per_user)
    rep.timed_out = any(t.is_alive() for t in threads)
    with lock:
        done = list(calls)
    missing = users * questions_per_user - len(done)
    rep.requests = len(done)
    rep.errors = sum(1 for c in done if not c.ok) + max(0, missing)
    rep.error_samples = sorted({c.error for c in done if not c.ok})[:10] + ([f"{missing} request(s) never finished"] if missing > 0 else [])
    rep.wall_seconds = wall
    rep.throughput_rps = len(done) / wall if wall else 0.0
    ok = [c for c in done if c.ok]
    rep.latency = {"all": percentiles([c.seconds for c in ok])}
    for ep in sorted({c.endpoint for c in ok}):
        rep.latency[ep] = percentiles([c.seconds for c in ok if c.endpoint == ep])
    return rep, done


def warm_up(url: str, auth: tuple[str, str] | None = None) -> None:
    """One request per endpoint (loads the model, fills caches); not counted."""
    from gradio_client import Client

    c = Client(url.rstrip("/") + "/", auth=auth, verbose=False)
    for q in FALLBACK_QUESTIONS:
        _submit(c, q["kind"], q["query"])[1].result(timeout=600)


def markdown(rep: Report) -> str:
    """The Markdown table for docs/benchmarks.md."""
    m = rep.machine
    cores = m.get("CPU(s)", m.get("cpu_count"))
    lines = [
        f"{rep.users} users × {rep.questions_per_user} questions = {rep.users * rep.questions_per_user} requests; "
        f"errors: **{rep.errors}**; wall time {rep.wall_seconds:.0f} s; throughput {rep.throughput_rps:.2f} requests/s.",
        "",
        f"Machine: {m.get('Model name', '?')}, {cores} CPU(s), {m.get('ram_gib', '?')} GiB RAM, "
        f"load average before/after {m.get('loadavg_before', ['?'])[0]} / {m.get('loadavg_after', ['?'])[0]}.",
        "",
        "| endpoint | n | mean s | p50 s | p90 s | p95 s | p99 s | max s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ep, s in rep.latency.items():
        if not s.get("n"):
            continue
        lines.append(
            f"| {ep} | {s['n']} | {s['mean']:.2f} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p95']:.2f} | {s['p99']:.2f} | {s['max']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--questions", type=int, default=50, help="questions per user")
    ap.add_argument("--queries", type=Path, default=DEV_QUERIES, help="dev_queries.jsonl")
    ap.add_argument("--index", type=Path, help="index directory for the launched app")
    ap.add_argument("--corpus", type=Path, help="corpus directory for the launched app")
    ap.add_argument("--url", help="an app already running (nothing is launched)")
    ap.add_argument("--auth", help="user:password for --url or the launched app")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run")
    ap.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = ap.parse_args(argv)

    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    proc = None
    machine = machine_info()
    machine["loadavg_before"] = machine.pop("loadavg", None)
    try:
        if args.url:
            url = args.url
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            proc, url = launch_server(args.index, args.corpus, free_port(), auth=args.auth,
                                      log=args.out.with_suffix(".server.log"))
        warm_up(url, auth)
        rep, calls = run_load(url, args.users, args.questions, load_questions(args.queries), args.timeout, auth)
    finally:
        if proc is not None:
            stop_server(proc)
    machine["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    rep.machine = machine
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"report": asdict(rep), "calls": [asdict(c) for c in calls]}, ensure_ascii=False, indent=1),
                        encoding="utf-8")
    print(markdown(rep))
    print(f"\n(report: {args.out})", file=sys.stderr)
    return 0 if rep.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
