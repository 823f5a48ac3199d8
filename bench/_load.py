"""HTTP load from a separate process against a server on 127.0.0.1: wrk when it is installed, else a Python
generator (threads, one keep-alive http.client connection each, reconnecting when the server closes).

`run_load` returns requests/s and latency percentiles in ms, and counts every response that is not a 200 (a
redirect to the sign-in page would otherwise look like a very fast page). Run as `python -m bench._load` it is
the Python generator's child process: a JSON config on stdin, a JSON result on stdout."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # the only target a load run may have


@dataclass(frozen=True)
class Req:
    """One kind of request in a load run; `weight` is relative to the others in the same run."""

    path: str
    weight: float = 1.0
    method: str = "GET"
    body: str = ""  # a urlencoded form for POST


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors and timeouts
    non200: int
    tool: str

    @property
    def failed(self) -> int:
        return self.errors + self.non200


def load_tool() -> str:
    return "wrk" if os.environ.get("BENCH_LOADGEN", "") != "python" and shutil.which("wrk") else "python"


def _weighted(reqs: list[Req]) -> list[tuple[Req, float]]:
    """Each request with the cumulative share of the weights up to it; the last is 1.0."""
    total = sum(r.weight for r in reqs)
    out, acc = [], 0.0
    for req in reqs:
        acc += req.weight / total
        out.append((req, acc))
    out[-1] = (out[-1][0], 1.0)
    return out


_LUA = r"""
local methods = {%(methods)s}
local paths = {%(paths)s}
local bodies = {%(bodies)s}
local cum = {%(cum)s}
local hdrs = {["Cookie"] = %(cookie)s, ["User-Agent"] = "portal-bench"}
local post_hdrs = {["Cookie"] = %(cookie)s, ["User-Agent"] = "portal-bench",
                   ["Content-Type"] = "application/x-www-form-urlencoded"}
local threads = {}
local counter = 0
non200 = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(1000 + tid)
end

function request()
  local r = math.random()
  local i = 1
  while cum[i] < r do i = i + 1 end
  if methods[i] == "POST" then
    return wrk.format("POST", paths[i], post_hdrs, bodies[i])
  end
  return wrk.format("GET", paths[i], hdrs)
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  local e = summary.errors
  local f = io.open(%(out)s, "w")
  f:write(string.format(
    '{"requests": %%d, "duration_us": %%d, "errors": %%d, "non200": %%d, ' ..
    '"p50": %%d, "p90": %%d, "p99": %%d, "max": %%d}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  f:close()
end
"""


def _lua_str(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII text


def _run_wrk(port: int, reqs: list[Req], cookie: str, seconds: float, connections: int) -> LoadResult:
    weighted = _weighted(reqs)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        out = Path(tmp) / "result.json"
        script = Path(tmp) / "load.lua"
        script.write_text(
            _LUA
            % {
                "methods": ", ".join(_lua_str(r.method) for r, _ in weighted),
                "paths": ", ".join(_lua_str(r.path) for r, _ in weighted),
                "bodies": ", ".join(_lua_str(r.body) for r, _ in weighted),
                "cum": ", ".join(f"{c:.6f}" for _, c in weighted),
                "cookie": _lua_str(cookie),
                "out": _lua_str(str(out)),
            }
        )
        threads = min(2, connections)
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://{HOST}:{port}/",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        data = json.loads(out.read_text())
    secs = data["duration_us"] / 1e6
    return LoadResult(
        requests=data["requests"],
        seconds=secs,
        rps=data["requests"] / secs,
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        errors=data["errors"],
        non200=data["non200"],
        tool="wrk",
    )


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _python_child(config: dict[str, Any]) -> dict[str, Any]:
    import random

    port, cookie = config["port"], config["cookie"]
    weighted = _weighted([Req(**r) for r in config["reqs"]])
    deadline = time.perf_counter() + config["seconds"]
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"errors": 0, "non200": 0}
    headers = {"Cookie": cookie, "User-Agent": "portal-bench", "Connection": "keep-alive"}
    post_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        mine: list[float] = []
        errors = non200 = 0
        while time.perf_counter() < deadline:
            r = rng.random()
            req = next(q for q, c in weighted if c >= r)
            started = time.perf_counter()
            try:
                if req.method == "POST":
                    conn.request("POST", req.path, body=req.body, headers=post_headers)
                else:
                    conn.request("GET", req.path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    non200 += 1
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["errors"] += errors
            counts["non200"] += non200

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(config["connections"])]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": counts["errors"],
        "non200": counts["non200"],
        "p50": _percentile(latencies, 50) * 1000,
        "p90": _percentile(latencies, 90) * 1000,
        "p99": _percentile(latencies, 99) * 1000,
        "max": (latencies[-1] if latencies else 0) * 1000,
    }


def _run_python(port: int, reqs: list[Req], cookie: str, seconds: float, connections: int) -> LoadResult:
    config = {
        "port": port,
        "reqs": [asdict(r) for r in reqs],
        "cookie": cookie,
        "seconds": seconds,
        "connections": connections,
    }
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench._load"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        cwd=root,
        timeout=seconds + 60,
        check=True,
    )
    data = json.loads(done.stdout)
    return LoadResult(
        requests=data["requests"],
        seconds=data["seconds"],
        rps=data["requests"] / data["seconds"],
        p50_ms=data["p50"],
        p90_ms=data["p90"],
        p99_ms=data["p99"],
        max_ms=data["max"],
        errors=data["errors"],
        non200=data["non200"],
        tool="python",
    )


def run_load(port: int, reqs: list[Req], cookie: str, *, seconds: float = 10.0, connections: int = 8) -> LoadResult:
    """Send the requests (chosen at random by weight) to 127.0.0.1:port for `seconds` from `connections`
    concurrent clients, each sending its next request when the last one is answered."""
    if load_tool() == "wrk":
        return _run_wrk(port, reqs, cookie, seconds, connections)
    return _run_python(port, reqs, cookie, seconds, connections)


if __name__ == "__main__":
    print(json.dumps(_python_child(json.load(sys.stdin))))
