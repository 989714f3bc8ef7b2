"""Platform rules checked on the built objects of every environment (what Kyverno enforces in the cluster,
caught here before merge), plus the shape of the Flux chain and of the environment overlays."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import (
    ENVS,
    GITOPS,
    LAYERS,
    OVERLAYS,
    REPO,
    SUBSTITUTION_KEYS,
    SYSTEM_NAMESPACES,
    containers,
    find,
    name_of,
    overlay_id,
    platform,
    pod_specs,
    versions,
)

GPU_TAINTS = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


def built(objects, overlay):
    if overlay not in objects:
        pytest.skip("overlay does not build (see test_every_overlay_builds)")
    return objects[overlay]


WORKLOAD_OVERLAYS = [o for o in OVERLAYS if o[0] != "clusters"]


# ---------------------------------------------------------------- images, resources, GPU placement


def image_problem(image: str) -> str | None:
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if digest:
        return None if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else "malformed digest"
    if not tag:
        return "untagged"
    if tag == "latest":
        return "latest tag"
    return None


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_no_image_uses_latest_or_no_tag(objects, overlay):
    bad = [
        f"{name_of(o)} {c['name']}: {c['image']} ({problem})"
        for o, spec in pod_specs(built(objects, overlay))
        for c in containers(spec)
        if (problem := image_problem(c["image"]))
    ]
    assert not bad


@pytest.mark.parametrize(
    ("image", "problem"),
    [("acr.azurecr.io/vllm:latest", "latest tag"), ("acr.azurecr.io/vllm", "untagged"),
     ("registry:5000/vllm", "untagged"), ("acr.azurecr.io/vllm:v0.10.1", None),
     ("acr.azurecr.io/vllm@sha256:" + "a" * 64, None)],
)
def test_image_rule_recognises_tags_and_digests(image, problem):
    assert image_problem(image) == problem


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_every_container_has_requests_and_limits(objects, overlay):
    missing = []
    for o, spec in pod_specs(built(objects, overlay)):
        for c in containers(spec):
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in res.get(kind, {}):
                        missing.append(f"{name_of(o)} {c['name']}: {kind}.{resource}")
    assert not missing


def gpu_vendor_requested(spec: dict) -> set[str]:
    return {
        vendor
        for c in containers(spec)
        for vendor, resource in GPU_TAINTS.items()
        if int((c.get("resources", {}).get("limits") or {}).get(resource, 0)) > 0
    }


def tolerated_gpu_vendors(spec: dict) -> set[str]:
    return {
        vendor
        for t in spec.get("tolerations") or []
        for vendor, key in GPU_TAINTS.items()
        if t.get("key") == key and t.get("effect", "NoSchedule") == "NoSchedule"
        and (t.get("operator") == "Exists" or t.get("value") == "present")
    }


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_every_gpu_workload_tolerates_the_gpu_taint_and_requests_gpus(objects, overlay):
    env = overlay[1]
    pools = {p["name"]: p["vendor"] for p in platform(env)["gpu_pools"]}
    problems = []
    for o, spec in pod_specs(built(objects, overlay)):
        if o["metadata"].get("namespace") in SYSTEM_NAMESPACES:
            continue
        selector = spec.get("nodeSelector") or {}
        selected_vendor = selector.get("platform.example.com/gpu-vendor")
        pool = selector.get("kubernetes.azure.com/agentpool")
        requested, tolerated = gpu_vendor_requested(spec), tolerated_gpu_vendors(spec)
        is_gpu_workload = requested or tolerated or selected_vendor or pool in pools
        if not is_gpu_workload:
            continue
        for c in containers(spec):
            for resource in GPU_TAINTS.values():
                limits = (c.get("resources", {}).get("limits") or {}).get(resource)
                requests = (c.get("resources", {}).get("requests") or {}).get(resource)
                if limits is not None and requests is not None and str(limits) != str(requests):
                    problems.append(f"{name_of(o)}: {resource} requests != limits")
        if len(requested) != 1:
            problems.append(f"{name_of(o)}: a GPU workload must request GPUs of exactly one vendor, got {requested}")
            continue
        vendor = next(iter(requested))
        if tolerated != {vendor}:
            problems.append(f"{name_of(o)}: tolerates {tolerated or 'no'} GPU taint, needs {GPU_TAINTS[vendor]}")
        if selected_vendor != vendor:
            problems.append(f"{name_of(o)}: nodeSelector gpu-vendor {selected_vendor!r}, needs {vendor!r}")
        if pools.get(pool) != vendor:
            problems.append(f"{name_of(o)}: nodeSelector agentpool {pool!r} is not a {vendor} pool of {env}")
    assert not problems


# ---------------------------------------------------------------- Helm, Ingress/TLS, network policy


def chart_pins() -> dict[str, str]:
    pins = {p["chart"]["name"]: str(p["chart"]["version"]) for p in versions()["npm"] if p.get("chart")}
    pins |= {h["chart"]["name"]: str(h["chart"]["version"]) for h in versions()["handwritten"] if h.get("chart")}
    return pins


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_every_helmrelease_pins_its_chart_version(objects, overlay):
    objs = built(objects, overlay)
    repos = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in find(objs, "HelmRepository")}
    problems = []
    for hr in find(objs, "HelmRelease"):
        spec = hr["spec"]["chart"]["spec"]
        version = str(spec.get("version", ""))
        if not SEMVER.match(version):
            problems.append(f"{name_of(hr)}: chart version {version!r} is not an exact version")
        pinned = chart_pins().get(spec["chart"])
        if pinned and pinned != version:
            problems.append(f"{name_of(hr)}: {spec['chart']} {version}, schemas/versions.yaml says {pinned}")
        ref = spec["sourceRef"]
        if (ref.get("namespace", hr["metadata"]["namespace"]), ref["name"]) not in repos:
            problems.append(f"{name_of(hr)}: source {ref} is not defined in this overlay")
    assert not problems


def covered(host: str, cert_hosts: list[str]) -> bool:
    return any(host == h or (h.startswith("*.") and host.split(".", 1)[1] == h[2:]) for h in cert_hosts)


def tls_blocks(node, path=()):
    """Ingress-shaped `tls` lists anywhere in Helm values."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "tls" and isinstance(v, list) and all(isinstance(x, dict) for x in v):
                yield (*path, k), v
            else:
                yield from tls_blocks(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from tls_blocks(v, (*path, i))


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_every_ingress_uses_tls_with_the_origin_certificate(objects, overlay):
    env = overlay[1]
    certs = {c["name"]: c["hostnames"] for c in platform(env)["certificates"]}
    problems = []
    for ing in find(built(objects, overlay), "Ingress"):
        spec = ing["spec"]
        if spec.get("ingressClassName") not in ("nginx-public", "nginx-internal"):
            problems.append(f"{name_of(ing)}: ingressClassName {spec.get('ingressClassName')!r}")
        tls_hosts = {h for t in spec.get("tls", []) for h in t.get("hosts", [])}
        for t in spec.get("tls") or [{}]:
            if t.get("secretName") not in certs:
                problems.append(f"{name_of(ing)}: TLS secret {t.get('secretName')!r} is not an origin certificate")
                continue
            problems += [f"{name_of(ing)}: {h} not covered by {t['secretName']}"
                         for h in t.get("hosts", []) if not covered(h, certs[t["secretName"]])]
        problems += [f"{name_of(ing)}: host {r.get('host')} has no TLS entry"
                     for r in spec.get("rules", []) if r.get("host") not in tls_hosts]
    for hr in find(built(objects, overlay), "HelmRelease"):
        for path, blocks in tls_blocks(hr["spec"].get("values", {})):
            for t in blocks:
                if t.get("secretName") not in certs:
                    problems.append(f"{name_of(hr)} values.{'.'.join(map(str, path))}: secret {t.get('secretName')!r}")
                else:
                    problems += [f"{name_of(hr)}: {h} not covered by {t['secretName']}"
                                 for h in t.get("hosts", []) if not covered(h, certs[t["secretName"]])]
    assert not problems


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o[0] == "apps"], ids=overlay_id)
def test_every_app_namespace_has_a_default_deny_network_policy(objects, overlay):
    objs = built(objects, overlay)
    namespaces = {o["metadata"]["name"] for o in find(objs, "Namespace")}
    denied = {
        np["metadata"]["namespace"]
        for np in find(objs, "NetworkPolicy")
        if np["spec"].get("podSelector") == {}
        and set(np["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not np["spec"].get("ingress") and not np["spec"].get("egress")
    }
    assert namespaces and namespaces <= denied, f"no default deny in {sorted(namespaces - denied)}"
    # DNS must stay reachable from every namespace that denies egress.
    dns = {np["metadata"]["namespace"] for np in find(objs, "NetworkPolicy")
           if any(p.get("port") == 53 for e in np["spec"].get("egress", []) for p in e.get("ports", []))}
    assert namespaces <= dns, f"no DNS egress in {sorted(namespaces - dns)}"


@pytest.mark.parametrize("env", ENVS)
def test_every_pod_priority_class_exists(objects, env):
    if any((layer, env) not in objects for layer in LAYERS):
        pytest.skip("an overlay of this environment does not build (see test_every_overlay_builds)")
    classes = {o["metadata"]["name"] for layer in LAYERS if (layer, env) in objects
               for o in find(objects[(layer, env)], "PriorityClass")}
    used = {(name_of(o), spec["priorityClassName"]) for layer in LAYERS if (layer, env) in objects
            for o, spec in pod_specs(objects[(layer, env)]) if spec.get("priorityClassName")}
    assert used
    assert not {u for u in used if u[1] not in classes}
    # Classes must be applied before the controllers that use them: they live in the controllers layer.
    controllers = objects[("infrastructure/controllers", env)]
    assert classes == {o["metadata"]["name"] for o in find(controllers, "PriorityClass")}


# ---------------------------------------------------------------- Flux chain

# The AKS Flux extension names the GitRepository it creates after the fluxConfiguration (infra/modules/aks/flux.tf).
FLUX_SOURCE = "platform"


def test_flux_source_is_the_gitrepository_the_aks_extension_creates():
    flux_tf = REPO / "infra" / "modules" / "aks" / "flux.tf"
    if not flux_tf.exists():
        pytest.skip("infra/modules/aks/flux.tf not present")
    match = re.search(r'resource\s+"azurerm_kubernetes_flux_configuration"\s+"\w+"\s*\{[^}]*?name\s*=\s*"([^"]+)"',
                      flux_tf.read_text())
    assert match, "no azurerm_kubernetes_flux_configuration with a literal name in infra/modules/aks/flux.tf"
    assert match.group(1) == FLUX_SOURCE


@pytest.mark.parametrize("env", ENVS)
def test_flux_entry_points_chain_controllers_configs_apps(objects, env):
    objs = built(objects, ("clusters", env))
    assert {o["kind"] for o in objs} == {"Kustomization"}, "clusters/<env> holds only Flux Kustomizations"
    ks = {o["metadata"]["name"]: o["spec"] for o in objs}
    assert set(ks) == {"infra-controllers", "infra-configs", "apps"}
    assert [d["name"] for d in ks["infra-configs"].get("dependsOn", [])] == ["infra-controllers"]
    assert [d["name"] for d in ks["apps"].get("dependsOn", [])] == ["infra-configs"]
    assert "dependsOn" not in ks["infra-controllers"]
    for name, spec in ks.items():
        assert spec["prune"] is True and spec["wait"] is True and spec.get("timeout"), name
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": FLUX_SOURCE}, name
        layer = {"infra-controllers": "infrastructure/controllers", "infra-configs": "infrastructure/configs",
                 "apps": "apps"}[name]
        assert spec["path"] == f"./gitops/{layer}/{env}", name
        assert (REPO / spec["path"]).is_dir(), name


def variables(objs: list[dict]) -> set[tuple[str, str]]:
    """(object, VAR) for every ${VAR} Flux would substitute (objects can opt out with an annotation)."""
    return {
        (name_of(o), v)
        for o in objs
        if o["metadata"].get("annotations", {}).get("kustomize.toolkit.fluxcd.io/substitute") != "disabled"
        for v in re.findall(r"\$\{([^}]*)\}", yaml.safe_dump(o))
    }


@pytest.mark.parametrize("env", ENVS)
def test_entry_points_only_pass_on_variables_the_root_kustomization_provides(objects, env):
    unknown = {v for v in variables(built(objects, ("clusters", env))) if v[1] not in SUBSTITUTION_KEYS}
    assert not unknown, "infra's fluxConfiguration post_build.substitute provides only SUBSTITUTION_KEYS"


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_every_substituted_variable_is_provided_by_its_flux_kustomization(objects, overlay):
    entry = {o["metadata"]["name"]: o["spec"] for o in objects.get(("clusters", overlay[1]), [])}
    flux_name = {"infrastructure/controllers": "infra-controllers", "infrastructure/configs": "infra-configs",
                 "apps": "apps"}[overlay[0]]
    provided = set(entry.get(flux_name, {}).get("postBuild", {}).get("substitute", {}))
    missing = {v for v in variables(built(objects, overlay)) if v[1] not in provided}
    assert not missing, f"${{...}} that {flux_name} does not substitute"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_id)
def test_no_base_placeholder_survives_an_overlay(objects, overlay):
    text = yaml.safe_dump_all(built(objects, overlay))
    assert "placeholder" not in text, "a base value meant to be patched per environment was not patched"


# ---------------------------------------------------------------- environments differ only by patches


def parse_pointer(pointer: str) -> tuple:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/")]
    return tuple(int(p) if p.isdigit() else p for p in parts)


def leaf_paths(node, path=()):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaf_paths(v, (*path, k))
    else:
        yield path  # scalars and whole lists: a merge patch replaces lists


def patched_paths(layer: str, env: str) -> dict[tuple[str, str], set[tuple]]:
    """(kind, name) -> field paths the overlay's patches set."""
    kustomization = yaml.safe_load((GITOPS / layer / env / "kustomization.yaml").read_text())
    out: dict[tuple[str, str], set[tuple]] = {}
    assert set(kustomization) <= {"apiVersion", "kind", "resources", "patches"}, \
        "overlays may only add patches to ../base"
    assert kustomization["resources"] == ["../base"]
    for patch in kustomization.get("patches", []):
        docs = list(yaml.safe_load_all((GITOPS / layer / env / patch["path"]).read_text()))
        if isinstance(docs[0], list):  # JSON 6902
            key = (patch["target"]["kind"], patch["target"]["name"])
            out.setdefault(key, set()).update(parse_pointer(op["path"]) for op in docs[0])
        else:  # strategic merge
            for doc in docs:
                key = (doc["kind"], doc["metadata"]["name"])
                body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
                meta = {k: v for k, v in doc["metadata"].items() if k not in ("name", "namespace")}
                if meta:
                    body["metadata"] = meta
                out.setdefault(key, set()).update(leaf_paths(body))
    return out


def differences(a, b, path=()):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a.keys() | b.keys():
            if k not in a or k not in b:
                yield (*path, k)
            else:
                yield from differences(a[k], b[k], (*path, k))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from differences(x, y, (*path, i))
    elif a != b:
        yield path


@pytest.mark.parametrize(("layer", "env"), [(layer, env) for layer in LAYERS[1:] for env in ENVS[1:]],
                         ids=lambda x: x)
def test_environment_overlays_differ_from_dev_only_in_patched_fields(objects, layer, env):
    def index(objs):
        return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}

    dev, other = index(built(objects, (layer, "dev-uaenorth"))), index(built(objects, (layer, env)))
    assert dev.keys() == other.keys(), "environments must build the same set of objects"
    allowed = patched_paths(layer, "dev-uaenorth")
    for key, paths in patched_paths(layer, env).items():
        allowed.setdefault(key, set()).update(paths)
    stray = [
        f"{key[0]}/{key[2]}: {'.'.join(map(str, d))}"
        for key in dev
        for d in differences(dev[key], other[key])
        if not any(d[: len(p)] == p for p in allowed.get((key[0], key[2]), ()))
    ]
    assert not stray, "differences not made by a patch in the overlays"
