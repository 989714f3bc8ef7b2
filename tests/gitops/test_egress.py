"""The firewall lets the cluster fetch every chart and image source declared in gitops/, and nothing else that
gitops asks for: the allow-list is derived from those sources (infra/modules/network/firewall_rules.tf)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from .conftest import ENVS, INFRA_MODULES, LAYERS, containers, find, hcl, pins, platform, pod_specs, tf_locals

# Hosts a client must reach to pull from a registry or chart host (how each redirects its blobs or downloads):
# Docker Hub (registry, token service, blob CDN), GitHub's registry (blobs on pkg-containers), Quay (blob CDN
# cdn*.quay.io), registry.k8s.io (redirects to regional Artifact Registry mirrors), NGC (nvcr.io and its blob
# hosts), the external-secrets and Kyverno vanity registries (redirect to ghcr.io), and chart indexes on GitHub
# Pages whose tarballs are GitHub release downloads.
GHCR = ["ghcr.io", "pkg-containers.githubusercontent.com"]
GITHUB_RELEASES = ["github.com", "release-assets.githubusercontent.com", "objects.githubusercontent.com"]
NEEDS = {
    "docker.io": ["registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com"],
    "ghcr.io": GHCR,
    "quay.io": ["quay.io", "cdn01.quay.io"],
    "registry.k8s.io": ["registry.k8s.io", "europe-west1-docker.pkg.dev"],
    "nvcr.io": ["nvcr.io", "layers.nvcr.io"],
    "oci.external-secrets.io": ["oci.external-secrets.io", *GHCR],
    "reg.kyverno.io": ["reg.kyverno.io", *GHCR],
    "helm.ngc.nvidia.com": ["helm.ngc.nvidia.com"],
    "grafana.github.io": ["grafana.github.io", *GITHUB_RELEASES],
    "grafana-community.github.io": ["grafana-community.github.io", *GITHUB_RELEASES],
    "rocm.github.io": ["rocm.github.io", *GITHUB_RELEASES],
}


def allowed(host: str, fqdns: list[str]) -> bool:
    return any(host == f or (f.startswith("*.") and host.endswith(f[1:])) for f in fqdns)


def firewall_fqdns() -> tuple[list[str], list[str]]:
    """(var.registry_fqdns default, local.gitops_source_fqdns) of the network module."""
    variables = hcl(INFRA_MODULES / "network" / "variables.tf")["variable"]
    registries = next(v["registry_fqdns"] for v in variables if "registry_fqdns" in v)["default"]
    return registries, tf_locals("network")["gitops_source_fqdns"]


def declared_sources(objs: list[dict], acr: str) -> dict[str, set[str]]:
    """Source host -> what declares it: HelmRepository/OCIRepository URLs, the charts' image registries, and
    images in pod specs that are not in the platform ACR (reached through its private endpoint)."""
    sources: dict[str, set[str]] = {}
    for kind in ("HelmRepository", "OCIRepository"):
        for repo in find(objs, kind):
            host = urlparse(repo["spec"]["url"]).hostname
            sources.setdefault(host, set()).add(f"{kind}/{repo['metadata']['name']}")
    for chart in pins()["charts"]:
        for registry in chart["registries"]:
            sources.setdefault(registry, set()).add(f"images of chart {chart['name']}")
    for o, spec in pod_specs(objs):
        for c in containers(spec):
            host = c["image"].split("/", 1)[0]
            if host != acr:
                sources.setdefault(host if "." in host else "docker.io", set()).add(o["metadata"]["name"])
    return sources


@pytest.mark.parametrize("env", ENVS)
def test_the_firewall_allows_every_declared_chart_and_image_source(objects, env):
    if any((layer, env) not in objects for layer in LAYERS):
        pytest.skip("an overlay of this environment does not build (see test_every_overlay_builds)")
    objs = [o for layer in LAYERS for o in objects[(layer, env)]]
    registries, gitops = firewall_fqdns()
    problems = []
    for source, declared_by in sorted(declared_sources(objs, f"{platform(env)['acr']['name']}.azurecr.io").items()):
        if source not in NEEDS:
            problems.append(f"{source} ({sorted(declared_by)}): unknown source; add how it is reached to NEEDS")
            continue
        problems += [f"{host} (for {source}: {sorted(declared_by)}) is not allowed by firewall_rules.tf"
                     for host in NEEDS[source] if not allowed(host, registries + gitops)]
    assert not problems


def test_every_gitops_source_host_in_the_firewall_is_needed_by_a_declared_source(objects):
    needed = set()
    for env in ENVS:
        if any((layer, env) not in objects for layer in LAYERS):
            pytest.skip("an overlay does not build (see test_every_overlay_builds)")
        objs = [o for layer in LAYERS for o in objects[(layer, env)]]
        for source in declared_sources(objs, f"{platform(env)['acr']['name']}.azurecr.io"):
            needed.update(NEEDS.get(source, []))
    _, gitops = firewall_fqdns()
    assert set(gitops) <= needed, f"allowed for nothing: {sorted(set(gitops) - needed)}"
    rules = [r for block in hcl(INFRA_MODULES / "network" / "firewall_rules.tf")["resource"]
             for r in block.get("azurerm_firewall_policy_rule_collection_group", {}).values()]
    app_rules = [rule for group in rules for coll in group["application_rule_collection"] for rule in coll["rule"]]
    (rule,) = [r for r in app_rules if r["name"] == "gitops-sources"]
    assert rule["destination_fqdns"] == "${local.gitops_source_fqdns}"
