"""`make run` end to end: Azurite + sandbox + app come up, answer, and all stop on Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shared.local.azurite import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_the_app_on_the_sandbox_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "AZURE_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.local.run", "--port", str(port), "--workdir", str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            output.append(line)
            if "Ctrl-C stops everything" in line or process.poll() is not None:
                break
        assert process.poll() is None, "".join(output)
        text = "".join(output)
        assert f"curl -s http://127.0.0.1:{port}/api/health" in text and "platformctl" in text

        health = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        # The details line works as printed: the function key it shows opens /api/health/details.
        details_line = re.search(r"curl -s -H 'x-functions-key: ([^']+)' '([^']+/api/health/details[^']*)'", text)
        assert details_line, text
        key, details_url = details_line.groups()
        assert requests.get(details_url.split("?")[0], timeout=10).status_code == 401
        details = requests.get(details_url, headers={"x-functions-key": key}, timeout=30)
        assert details.status_code == 200 and details.json()["environment"] == "dev-uaenorth"
        assert details.json()["status"] == "ok"

        settings = tmp_path / "sandbox.settings.json"
        assert oct(settings.stat().st_mode & 0o777) == "0o600"
        cli = subprocess.run(
            [sys.executable, "-m", "shared.cli", "--settings", str(settings), "--json", "health"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        report = json.loads(cli.stdout)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert {p["name"]: p["reachable"] for p in report["probes"]} == {
            "storage": True, "aks": True, "keyvault": True, "cloudflare": True, "kubernetes": True, "gitlab": True,
        }
        assert "sandbox-cloudflare-token" not in cli.stdout

        # ChatOps as the banner shows it: a command answered through the response_url, then an approval.
        def chat(*words):
            run = subprocess.run([sys.executable, "-m", "shared.cli", "--settings", str(settings), "chat", *words],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            return run.returncode, run.stdout + run.stderr

        # (The pause runs on Storage alone, so a loaded machine does not make this slow; status loads every SDK.)
        assert 'chat "status dev-uaenorth"' in text and "audit verify chatops/dev-uaenorth" in text
        code, out = chat("pause autoscaling dev-uaenorth", "--as", "alice")
        request_id = re.search(r"--click ([0-9a-f]+) --as bob", out)
        assert code == 0 and request_id, out
        code, out = chat("--click", request_id.group(1), "--as", "bob", "--wait", "45")
        assert code == 0 and "is paused" in out, out
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        output.append(rest)
    assert process.returncode == 0, "".join(output)
    assert "stopped: app, sandbox and Azurite" in "".join(output)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
    leftover = subprocess.run(["pgrep", "-f", f"azurite.*{tmp_path}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "Azurite was left running"
