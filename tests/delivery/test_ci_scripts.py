"""The small CI scripts the pipelines call: the Functions package's contents, reading Terraform outputs, the
post-deploy smoke test (against a loopback server on a free port) and the image list Trivy scans."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def script(name: str):
    module_name = f"ci_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / "ci" / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def test_the_functions_package_holds_the_app_and_platform_facts_but_no_tooling(tmp_path):
    out = tmp_path / "functions-package.zip"
    script("functions_package").build(out, with_deps=False)
    names = set(zipfile.ZipFile(out).namelist())
    assert {"function_app.py", "host.json", "requirements.txt", "shared/__init__.py",
            "infra/envs/prd-uaenorth/platform.yaml"} <= names
    forbidden = ("tests/", "shared/local/", "gitops/", "ci/", ".github/", "docs/", "infra/modules/", "bench/")
    assert not [n for n in names if n.startswith(forbidden) or n.endswith(".tf")]


def test_terraform_outputs_are_read_by_dotted_path(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"resource_group": "rg-x", "automation": {"name": "func-x"}}))
    tf = script("terraform_output")
    assert tf.main([str(outputs), "automation.name"]) == 0
    assert capsys.readouterr().out.strip() == "func-x"
    assert tf.main([str(outputs), "automation.default_hostname"]) == 1


class Health(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []

    def do_GET(self):
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/health"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("answers", "expected"), [
    ([(503, {"status": "unhealthy"}), (200, {"status": "ok", "version": "0.1.0"})], 0),
    ([(200, {"status": "ok", "version": "0.0.9"})], 1),   # the old code still serving
    ([(503, {"status": "unhealthy"})], 1),
], ids=["retries until healthy", "refuses the old version", "gives up at the deadline"])
def test_the_smoke_test_waits_for_the_new_version_to_be_healthy(health_server, answers, expected):
    Health.answers = list(answers)
    now = [0.0]
    code = script("smoke_health").main([health_server, "--expect-version", "0.1.0", "--timeout", "30",
                                        "--interval", "10"],
                                       sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert code == expected


def test_the_image_list_covers_pod_templates_and_helm_values():
    objects = [
        {"kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "i", "image": "acr.example/init:1"}],
            "containers": [{"name": "c", "image": "acr.example/app:2"}, {"name": "s", "image": "${SUBST}:3"}]}}}},
        {"kind": "HelmRelease", "spec": {"values": {"controller": {"image": {
            "registry": "mcr.microsoft.com", "repository": "oss/kyverno", "tag": "v1.15.0"}},
            "sidecar": {"image": "ghcr.io/x/y@sha256:abc"}, "replicas": 2}}},
    ]
    assert script("gitops_images").images_of(objects) == {
        "acr.example/init:1", "acr.example/app:2", "mcr.microsoft.com/oss/kyverno:v1.15.0", "ghcr.io/x/y@sha256:abc"}


def test_secret_detection_fails_only_on_findings_outside_the_reviewed_baseline(tmp_path):
    def baseline(results):
        path = tmp_path / f"b{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({"results": {f: [{"type": "Secret Keyword", "hashed_secret": h, "line_number": n}]
                                                for f, h, n in results}}))
        return str(path)

    diff = script("secrets_diff").main
    reviewed = baseline([("shared/a.py", "h1", 10)])
    assert diff([reviewed, baseline([("shared/a.py", "h1", 12)])]) == 0          # a known finding moved
    assert diff([reviewed, baseline([("shared/a.py", "h1", 10), ("shared/b.py", "h2", 1)])]) == 1
