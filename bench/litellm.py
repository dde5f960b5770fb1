"""``--with-litellm``: LiteLLM's proxy (one worker, no database: only its master key is
checked) in front of the same mock, in a virtual environment of its own, measured like
the gateway."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fixtures import free_port

from bench.measurements import Figures, ModeResult, Row
from bench.processes import BenchError, Supervisor, child_env
from bench.procstat import sample
from bench.scenarios import NATIVE, OPENAI, chat_body
from bench.stack import MODEL, Mock, wait_healthy
from bench.wrk import Wrk

VENV = Path(tempfile.gettempdir()) / "nnz-bench-litellm-venv"
INSTALL_TIMEOUT_S = 1200


def ensure_venv(venv: Path = VENV) -> Path:
    """``litellm[proxy]`` in its own venv (kept between runs); the ``litellm`` script."""
    script = venv / "bin" / "litellm"
    if script.exists():
        return script
    print(f"bench: installing litellm[proxy] into {venv} (takes minutes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0 or not script.exists():
        raise BenchError(f"pip install 'litellm[proxy]' failed:\n{result.stderr[-1500:]}")
    return script


def config_yaml(mock_url: str) -> str:
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: ollama_chat/{MODEL}\n"
        f"      api_base: {mock_url}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )


async def measure(
    supervisor: Supervisor, workdir: Path, wrk: Wrk, mock: Mock, phase_s: float
) -> ModeResult:
    result = ModeResult("LiteLLM proxy (1 worker, no database: master key only)")
    master_key = "sk-bench-" + secrets.token_hex(16)
    script = ensure_venv()
    config = workdir / "litellm.yaml"
    config.write_text(config_yaml(mock.url))
    port = free_port()
    child = supervisor.start(
        "litellm",
        [
            str(script),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        # Recent versions refuse to start without a master key.
        env=child_env(
            LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", LITELLM_MASTER_KEY=master_key
        ),
        cwd=workdir,
        log_path=workdir / "litellm.log",
    )
    url = f"http://127.0.0.1:{port}"
    started = await wait_healthy(f"{url}/health/liveliness", child, timeout=120)
    result.fact("start to healthy", f"{started:.2f} s")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {master_key}"}
    body = chat_body(OPENAI, stream=False).decode()
    await wrk.run(
        url + OPENAI, body=body, headers=headers, connections=8, duration_s=2, name="litellm-warmup"
    )
    for connections in (1, 32):
        direct_run = await wrk.run(
            mock.url + NATIVE,
            body=chat_body(NATIVE, stream=False).decode(),
            headers={"Content-Type": "application/json"},
            connections=connections,
            duration_s=phase_s,
            name=f"litellm-direct-c{connections}",
        )
        before = sample(child.pid)
        run = await wrk.run(
            url + OPENAI,
            body=body,
            headers=headers,
            connections=connections,
            duration_s=phase_s,
            name=f"litellm-c{connections}",
        )
        after = sample(child.pid)
        direct = Figures(rate=direct_run.ok_rps, p50_ms=direct_run.p50_ms, p99_ms=direct_run.p99_ms)
        proxy = Figures(
            rate=run.ok_rps,
            p50_ms=run.p50_ms,
            p99_ms=run.p99_ms,
            errors=run.error_count,
            cpu_ms_per_op=(after.cpu_s - before.cpu_s) * 1000 / run.requests
            if run.requests
            else None,
            rss_mb=after.rss_mb,
        )
        result.rows.append(Row(f"litellm {OPENAI} c={connections}", "req/s", direct, proxy))
    return result
