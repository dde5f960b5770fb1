"""Plain request/response load with Debian's ``wrk``: a Lua script per target, and its
summary read back as one JSON line printed by the script's ``done`` hook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.processes import BenchError, run_tool

MARKER = "BENCH_JSON "

_HOOKS = r"""
local threads = {}
setup = function(thread) table.insert(threads, thread) end

-- The first answer that is not a 200, to say what the errors were.
response = function(status, headers, body)
  if status ~= 200 and first_status == nil then
    first_status = status
    first_body = string.sub(body or "", 1, 300)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local status, body = 0, ""
  for _, thread in ipairs(threads) do
    if thread:get("first_status") ~= nil and status == 0 then
      status = thread:get("first_status")
      body = thread:get("first_body")
    end
  end
  body = string.gsub(body, "[\\\"%c]", " ")
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"connect\":%d," ..
    "\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d," ..
    "\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"max_us\":%.1f," ..
    "\"first_error_status\":%d,\"first_error_body\":\"%s\"}\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.mean,
    latency.max, status, body))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: Mapping[str, int]
    first_error: str = ""

    @property
    def rps(self) -> float:
        """Answered requests per second, whatever their status."""
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok_rps(self) -> float:
        """Requests per second answered with a 200 (a fast 503 is no throughput)."""
        ok = self.requests - self.errors["status"]
        return ok / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def lua_string(text: str) -> str:
    """``text`` as a double-quoted Lua literal (bytes outside printable ASCII as ``\\ddd``)."""
    out = ['"']
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def lua_script(body: str, headers: Mapping[str, str], *, delay_ms: int | None = None) -> str:
    """A wrk script that POSTs ``body`` with ``headers`` on every request, optionally
    waiting ``delay_ms`` before each (wrk's pacing hook; used for the soak)."""
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(body)}"]
    for name, value in headers.items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    if delay_ms is not None:
        lines.append(f"delay = function() return {int(delay_ms)} end")
    return "\n".join(lines) + "\n" + _HOOKS


def parse_output(stdout: str) -> WrkResult:
    """The summary that the script's ``done`` hook printed; ``BenchError`` if there is none."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                mean_ms=data["mean_us"] / 1000,
                max_ms=data["max_us"] / 1000,
                errors={k: int(data[k]) for k in ("connect", "read", "write", "status", "timeout")},
                first_error=(
                    f"{data['first_error_status']}: {data['first_error_body']}".strip()
                    if data.get("first_error_status")
                    else ""
                ),
            )
    raise BenchError(f"wrk printed no summary:\n{stdout[-2000:]}")


def ensure_wrk() -> str:
    """The path of ``wrk``; installed with apt-get when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("wrk is not installed: run `apt-get install -y wrk` as root")
    print("bench: installing wrk with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BenchError(f"apt-get install wrk failed:\n{result.stderr[-1500:]}")
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is still not on PATH after apt-get install wrk")
    return found


@dataclass(frozen=True, slots=True)
class Wrk:
    binary: str
    workdir: Path

    async def run(
        self,
        url: str,
        *,
        body: str,
        headers: Mapping[str, str],
        connections: int,
        duration_s: float,
        delay_ms: int | None = None,
        name: str = "wrk",
    ) -> WrkResult:
        script = self.workdir / f"{name}.lua"
        script.write_text(lua_script(body, headers, delay_ms=delay_ms))
        seconds = max(1, round(duration_s))
        output = await run_tool(
            [
                self.binary,
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            timeout=seconds + 30,
        )
        (self.workdir / f"{name}.out").write_text(output.stdout + output.stderr)
        if output.returncode != 0:
            raise BenchError(f"wrk exited with {output.returncode}:\n{output.stderr[-1500:]}")
        return parse_output(output.stdout)
