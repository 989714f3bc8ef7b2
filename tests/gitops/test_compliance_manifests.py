"""`platformctl scan --manifests` on what Flux applies: every environment's rendered overlays (built once per
session by conftest's kustomize helpers) pass the Pod Security Standards baseline and the platform's network and
TLS rules; the scan reports in the Scan JSON contract, offline, with no settings."""

from __future__ import annotations

import json

import pytest

from shared import cli
from shared.services.compliance import rules

from .conftest import ENVS

LAYERS = ("infrastructure/controllers", "infrastructure/configs", "apps")
BASELINE = {rule.id for rule, _ in rules.POD_RULES.values() if rule.profile == "baseline"}
#: Platform rules the repository must never break (the others are reported and tracked, e.g. image digests).
ALWAYS = {"platform-default-deny", "platform-ingress-tls", "platform-gpu-toleration", "platform-image-registry",
          "platform-requests-limits"}


@pytest.fixture(scope="module")
def scans(objects, tmp_path_factory):
    """Each environment's rendered objects as one multi-document file, scanned through the CLI."""
    out = {}
    for env in ENVS:
        docs = [obj for layer in LAYERS for obj in objects.get((layer, env), [])]
        path = tmp_path_factory.mktemp(env) / "rendered.yaml"
        path.write_text("".join(f"---\n{json.dumps(doc)}\n" for doc in docs))  # JSON documents are YAML
        out[env] = path
    return out


@pytest.mark.parametrize("env", ENVS)
def test_the_rendered_overlays_pass_the_baseline_and_the_platform_rules(env, scans, capsys, monkeypatch):
    for name in ("PLATFORM_ENV", "PLATFORM_STORAGE_ACCOUNT", "PLATFORM_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(["--env", env, "--json", "scan", "--manifests", str(scans[env])])
    report = json.loads(capsys.readouterr().out)
    assert report["env"] == env and set(report["summary"]) >= {"critical", "high", "new", "fixed"}
    found = {(f["rule"], f["resource"]) for f in report["findings"] if f["status"] != "excepted"}
    assert not {f for f in found if f[0] in BASELINE | ALWAYS}, sorted(found)
    blocking = [f for f in report["findings"] if f["severity"] in ("high", "critical")
                and f["status"] in ("new", "persisting")]
    assert code == (1 if blocking else 0)
    assert all(f["source"] == "gitops" for f in report["findings"])
