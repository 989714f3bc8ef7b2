"""Shared fixtures for the offline GitOps checks (tests/gitops): builds every overlay once per session."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import hcl2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "gitops"
SCHEMAS = GITOPS / "schemas"
ENVS = ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")
# Every overlay Flux applies, relative to gitops/: the entry points and the three layers they chain.
LAYERS = ("clusters", "infrastructure/controllers", "infrastructure/configs", "apps")
OVERLAYS = [(layer, env) for layer in LAYERS for env in ENVS]
# Namespaces of the platform's own controllers (chart-rendered; exempt from the workload policies, as in
# gitops/infrastructure/configs/base/policies).
SYSTEM_NAMESPACES = {
    "kube-system", "kube-public", "kube-node-lease", "flux-system", "gpu-operator", "kube-amd-gpu",
    "monitoring", "cert-manager", "external-secrets", "keda", "kyverno", "envoy-gateway-system", "gateways",
}
INFRA_MODULES = REPO / "infra" / "modules"
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def overlay_id(overlay: tuple[str, str]) -> str:
    return f"{overlay[0]}/{overlay[1]}"


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kustomize_build(path: Path) -> list[dict]:
    exe = kubectl()
    proc = subprocess.run([exe, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path.relative_to(REPO)} failed:\n{proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture(scope="session")
def builds(once_per_run) -> dict[tuple[str, str], list[dict] | Exception]:
    """`kubectl kustomize` output of every overlay, built once per run (not once per xdist worker), in parallel.
    Skips without kubectl."""
    if not kubectl():
        pytest.skip("kubectl not found on PATH: overlay builds, schema and policy checks need `kubectl kustomize`")

    def build(overlay):
        try:
            return {"objects": kustomize_build(GITOPS / overlay[0] / overlay[1])}
        except Exception as exc:  # reported by test_every_overlay_builds; other tests skip that overlay
            return {"error": str(exc)}

    def build_all():
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(build, OVERLAYS))

    return {overlay: result["objects"] if "objects" in result else RuntimeError(result["error"])
            for overlay, result in zip(OVERLAYS, once_per_run("gitops-overlay-builds", build_all), strict=True)}


@pytest.fixture(scope="session")
def objects(builds) -> dict[tuple[str, str], list[dict]]:
    """Built objects of the overlays that built (failures are reported once, by test_every_overlay_builds)."""
    return {k: v for k, v in builds.items() if not isinstance(v, Exception)}


@cache
def platform(env: str) -> dict:
    return yaml.safe_load((REPO / "infra" / "envs" / env / "platform.yaml").read_text())


@cache
def hcl(path: Path) -> dict:
    """One .tf file of infra/ as python-hcl2 renders it (blocks are lists of {label: body} dicts)."""
    with path.open() as fh:
        return hcl2.load(fh, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True,
                                                                            explicit_blocks=False))


def tf_locals(module: str) -> dict:
    """The locals of one infra module, merged across its files."""
    merged: dict = {}
    for path in sorted((INFRA_MODULES / module).glob("*.tf")):
        for entry in hcl(path).get("locals", []):
            merged.update({k: v for k, v in entry.items() if not k.startswith("__")})
    return merged


def workload_identities() -> dict[str, dict]:
    """infra's workload identities (modules/platform/workload_identity.tf): name -> namespace, service_account,
    flux_variable."""
    return {name: {k: v for k, v in wi.items() if not k.startswith("__")}
            for name, wi in tf_locals("platform")["workload_identities"].items() if not name.startswith("__")}


def flux_platform_variables() -> set[str]:
    """Platform facts (not identities) the root Kustomization substitutes (infra/modules/aks/flux.tf)."""
    return set(tf_locals("aks")["flux_platform_variables"])


# Variables the root Kustomization (infra's fluxConfiguration, post_build.substitute) provides: the
# workload-identity client IDs and the platform facts of flux.tf, read from Terraform so the two cannot drift
# (the wiring itself is checked in test_platform_facts.py).
SUBSTITUTION_KEYS = frozenset(wi["flux_variable"] for wi in workload_identities().values()) | frozenset(
    flux_platform_variables())


@cache
def versions() -> dict:
    """gitops/schemas/versions.yaml: where each custom-resource schema comes from."""
    return yaml.safe_load((SCHEMAS / "versions.yaml").read_text())


@cache
def pins() -> dict:
    """gitops/versions.yaml: every pinned version with its support window."""
    return yaml.safe_load((GITOPS / "versions.yaml").read_text())


def kubernetes_version(env: str) -> str:
    """The cluster's Kubernetes minor (platform.yaml, infra's pin) as kubernetes-validate takes it."""
    return f"{platform(env)['cluster']['kubernetes_version']}.0"


@cache
def crd_schema(api_version: str, kind: str) -> dict | None:
    path = SCHEMAS / api_version / f"{kind}.json"
    return json.loads(path.read_text()) if path.exists() else None


def name_of(obj: dict) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def pod_specs(objs: list[dict]):
    """(object, pod spec) for every workload that runs pods."""
    for obj in objs:
        kind = obj.get("kind")
        if kind == "Pod":
            yield obj, obj["spec"]
        elif kind in POD_TEMPLATE_KINDS:
            yield obj, obj["spec"]["template"]["spec"]
        elif kind == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers(spec: dict):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]
