"""`make run` end to end: Azurite + sandbox + app come up, answer, and all stop on Ctrl-C."""

import datetime as dt
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

        # GPU scaling as the banner shows it: requests queued, the pool woken to the override's size, a vLLM pod
        # started on each new node by the emulated Deployment controller and in flight read from them; an override
        # below drains: the cordoned node's pod goes first, then exactly its machine.
        assert "shared.local.enqueue" in text and "scaling override h100 1" in text
        values = json.loads(settings.read_text())["Values"]
        kube = values["KUBERNETES_API_URL"]

        def cli(*words):
            run = subprocess.run([sys.executable, "-m", *words], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=60)
            assert run.returncode == 0, run.stdout + run.stderr
            return run.stdout

        def listed(path):
            answer = requests.get(f"{kube}{path}", headers={"Authorization": "Bearer sandbox"}, timeout=10)
            return answer.json()["items"]

        def serving():  # the serving pods by node, as the tick lists them
            return {p["spec"].get("nodeName"): p["metadata"]["name"] for p in listed(
                "/api/v1/namespaces/model-serving/pods?labelSelector=app.kubernetes.io/instance%3Dvllm-h100")}

        def h100_nodes():
            return {n["metadata"]["name"]: bool(n["spec"].get("unschedulable"))
                    for n in listed("/api/v1/nodes?labelSelector=kubernetes.azure.com/agentpool%3Dh100")}

        def ticks_until(done, seconds=30):
            """Tick now (the admin endpoint), again every 2 s, until ``done()``; the 15 s timer may tick too."""
            deadline, last = time.monotonic() + seconds, 0.0
            while time.monotonic() < deadline:
                if time.monotonic() - last > 2:
                    requests.post(f"http://127.0.0.1:{port}/admin/functions/gpu_scaling", json={}, timeout=10)
                    last = time.monotonic()
                if result := done():
                    return result
                time.sleep(0.2)
            raise AssertionError(f"not done in {seconds}s: nodes {h100_nodes()}, pods {serving()}")

        # (The banner's CLI lines run once each; the same calls in this process where a second interpreter would
        # only cost seconds: the queue, the second override.)
        from shared.context import Context
        from shared.credentials import StaticTokenCredential
        from shared.platform import load_environment
        from shared.services.scaling import tick as scaling
        from shared.settings import Settings

        here = Context(settings=Settings.from_env(values), platform=load_environment("dev-uaenorth"),
                       credential=StaticTokenCredential())
        for i in range(12):
            here.storage.send("inference-h100", f'{{"prompt": "request {i}"}}')
        cli("shared.cli", "--settings", str(settings), "scaling", "override", "h100", "2", "--for", "1h")
        def two_running():
            pods = serving()
            return pods if len(pods) == 2 and None not in pods else None

        woken = ticks_until(two_running)
        assert set(woken) == set(h100_nodes())  # one Running pod on each new node
        [row] = [r for r in json.loads(cli("shared.cli", "--settings", str(settings), "--json", "scaling", "status"))
                 if r["pool"] == "h100"]
        assert (row["in_flight_source"], row["in_flight"]) == ("vllm", 12), row
        assert sorted(n["serving_pods"] for n in row["nodes"]) == [1, 1]
        scaling.set_override(here, "h100", 1, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), by="test")
        cordoned = ticks_until(lambda: [n for n, c in h100_nodes().items() if c])
        assert len(cordoned) == 1 and cordoned[0] not in serving()  # its pod went first, the other stays
        kept = {node: pod for node, pod in woken.items() if node not in cordoned}
        assert serving() == kept
        ticks_until(lambda: set(h100_nodes()) == set(kept))  # then exactly the cordoned node's machine
        assert serving() == kept

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
