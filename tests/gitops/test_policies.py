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
    hcl,
    name_of,
    overlay_id,
    pins,
    platform,
    pod_specs,
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
    return {c["name"]: str(c["version"]) for c in pins()["charts"]}


def chart_of(hr: dict, objs: list[dict]) -> tuple[str, str, dict | None]:
    """(chart name, version, source object) of a HelmRelease: chart.spec with a HelmRepository, or chartRef to
    an OCIRepository (the chart name is the last path segment of its URL, the version its ref.tag)."""
    ns = hr["metadata"].get("namespace")
    if "chartRef" in hr["spec"]:
        ref = hr["spec"]["chartRef"]
        source = next((o for o in find(objs, ref["kind"], ref["name"])
                       if o["metadata"].get("namespace") == ref.get("namespace", ns)), None)
        spec = (source or {}).get("spec", {})
        return spec.get("url", "").rstrip("/").rsplit("/", 1)[-1], str((spec.get("ref") or {}).get("tag", "")), source
    spec = hr["spec"]["chart"]["spec"]
    ref = spec["sourceRef"]
    source = next((o for o in find(objs, ref["kind"], ref["name"])
                   if o["metadata"].get("namespace") == ref.get("namespace", ns)), None)
    return spec["chart"], str(spec.get("version", "")), source


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_every_helmrelease_pins_its_chart_version(objects, overlay):
    objs = built(objects, overlay)
    problems = []
    for hr in find(objs, "HelmRelease"):
        chart, version, source = chart_of(hr, objs)
        if not SEMVER.match(version):
            problems.append(f"{name_of(hr)}: chart version {version!r} is not an exact version")
        pinned = chart_pins().get(chart)
        if pinned != version:
            problems.append(f"{name_of(hr)}: {chart} {version}, gitops/versions.yaml says {pinned}")
        if source is None:
            problems.append(f"{name_of(hr)}: its chart source is not defined in this overlay")
    assert not problems


def covered(host: str, cert_hosts: list[str]) -> bool:
    return any(host == h or (h.startswith("*.") and host.split(".", 1)[1] == h[2:]) for h in cert_hosts)


def listeners(objs: list[dict], gateway: str) -> list[dict]:
    (gw,) = [g for g in find(objs, "Gateway", gateway) if g["metadata"]["namespace"] == "gateways"]
    return gw["spec"]["listeners"]


@pytest.mark.parametrize("env", ENVS)
def test_the_public_gateway_serves_the_origin_certificate_and_the_internal_one_the_internal_ca(objects, env):
    objs = built(objects, ("infrastructure/configs", env))
    (cert,) = platform(env)["certificates"]
    problems = []
    for listener in listeners(objs, "public"):
        refs = [r["name"] for r in listener["tls"]["certificateRefs"]]
        if listener["protocol"] != "HTTPS" or refs != [cert["name"]]:
            problems.append(f"public/{listener['name']}: {listener['protocol']} {refs}, needs HTTPS {cert['name']}")
        if not covered(listener["hostname"], cert["hostnames"]):
            problems.append(f"public/{listener['name']}: {listener['hostname']} not covered by {cert['name']}")
    issued = {c["spec"]["secretName"]: c for c in find(objs, "Certificate")}
    for listener in listeners(objs, "internal"):
        for ref in listener["tls"]["certificateRefs"]:
            # Internal hosts never serve the Cloudflare origin certificate (VNet clients do not trust its CA).
            certificate = issued.get(ref["name"])
            if ref["name"] == cert["name"] or certificate is None:
                problems.append(f"internal/{listener['name']}: {ref['name']} is not a cert-manager certificate")
            elif certificate["spec"]["issuerRef"] != {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                                      "name": "platform-internal-ca"}:
                problems.append(f"internal: {ref['name']} is not issued by the internal CA")
            elif listener["hostname"] not in certificate["spec"]["dnsNames"]:
                problems.append(f"internal: {listener['hostname']} not in {ref['name']}'s dnsNames")
    assert not problems


@pytest.mark.parametrize("env", ENVS)
def test_the_public_gateway_verifies_cloudflare_client_certificates(objects, env):
    objs = built(objects, ("infrastructure/configs", env))
    public = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}
    policies = [p for p in find(objs, "ClientTrafficPolicy") if public in p["spec"]["targetRefs"]]
    assert len(policies) == 1, "exactly one ClientTrafficPolicy on the public Gateway"
    validation = policies[0]["spec"]["tls"]["clientValidation"]
    assert validation.get("optional", False) is False, "Authenticated Origin Pulls: a client certificate is required"
    (ca,) = validation["caCertificateRefs"]
    (source,) = [e for e in find(objs, "ExternalSecret", ca["name"]) if e["metadata"]["namespace"] == "gateways"]
    assert source["spec"]["target"]["name"] == ca["name"]
    assert [d["secretKey"] for d in source["spec"]["data"]] == ["ca.crt"]


def gateway_namespaces(objs_by_layer: list[dict]) -> dict[str, set[str]]:
    """Gateway -> namespaces whose labels its listeners admit routes from."""
    namespaces = {o["metadata"]["name"]: o["metadata"].get("labels", {}) for o in find(objs_by_layer, "Namespace")}
    admitted = {}
    for gw in find(objs_by_layer, "Gateway"):
        for listener in gw["spec"]["listeners"]:
            selector = listener["allowedRoutes"]["namespaces"]["selector"]["matchLabels"]
            admitted.setdefault(gw["metadata"]["name"], set()).update(
                ns for ns, labels in namespaces.items() if selector.items() <= labels.items())
    return admitted


@pytest.mark.parametrize("env", ENVS)
def test_every_route_attaches_to_a_platform_gateway_that_admits_it_under_the_certificate_names(objects, env):
    if any((layer, env) not in objects for layer in LAYERS):
        pytest.skip("an overlay of this environment does not build (see test_every_overlay_builds)")
    objs = [o for layer in LAYERS for o in objects[(layer, env)]]
    (cert,) = platform(env)["certificates"]
    admitted = gateway_namespaces(objs)
    # The inference gateway's AIGatewayRoute becomes an HTTPRoute of the same name in the cluster (its backends,
    # AIServiceBackends, are checked in test_ai_gateway.py).
    routes = find(objs, "HTTPRoute") + find(objs, "AIGatewayRoute")
    assert {r["metadata"]["name"] for r in routes} >= {"inference", "mlflow", "grafana"}
    assert not find(objs, "Ingress"), "ingress-nginx is retired: routes only"
    problems = []
    for route in routes:
        ns = route["metadata"]["namespace"]
        for parent in route["spec"]["parentRefs"]:
            if parent.get("namespace") != "gateways" or parent["name"] not in admitted:
                problems.append(f"{name_of(route)}: parent {parent} is not a platform Gateway")
            elif ns not in admitted[parent["name"]]:
                problems.append(f"{name_of(route)}: namespace {ns} is not admitted by Gateway {parent['name']}")
        problems += [f"{name_of(route)}: {h} is not under {cert['hostnames']}"
                     for h in route["spec"].get("hostnames", []) if not covered(h, cert["hostnames"])]
        for rule in route["spec"]["rules"] if route["kind"] == "HTTPRoute" else []:
            for backend in rule["backendRefs"]:
                services = [s for s in find(objs, "Service", backend["name"]) if s["metadata"]["namespace"] == ns]
                # The Grafana and OpenCost charts render their Services in the cluster, not here.
                missing = not services or backend["port"] not in {p["port"] for p in services[0]["spec"]["ports"]}
                if missing and backend["name"] not in ("grafana", "opencost"):
                    problems.append(f"{name_of(route)}: backend {backend} is no Service port in {ns}")
    assert not problems


PLATFORM_NAMESPACES = {"monitoring", "envoy-gateway-system", "gateways", "external-secrets", "keda", "kyverno",
                       "cert-manager", "gpu-operator", "kube-amd-gpu"}


@pytest.mark.parametrize("env", ENVS)
def test_every_platform_and_app_namespace_denies_by_default_and_keeps_dns(objects, env):
    if any((layer, env) not in objects for layer in LAYERS):
        pytest.skip("an overlay of this environment does not build (see test_every_overlay_builds)")
    objs = [o for layer in LAYERS for o in objects[(layer, env)]]
    namespaces = {o["metadata"]["name"] for o in find(objs, "Namespace")}
    assert namespaces >= PLATFORM_NAMESPACES
    policies = find(objs, "NetworkPolicy")
    denied = {
        np["metadata"]["namespace"]
        for np in policies
        if np["spec"].get("podSelector") == {}
        and set(np["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not np["spec"].get("ingress") and not np["spec"].get("egress")
    }
    assert namespaces <= denied, f"no default deny in {sorted(namespaces - denied)}"
    # DNS must stay reachable from every namespace that lets anything out at all.
    egress = {np["metadata"]["namespace"] for np in policies if np["spec"].get("egress")}
    dns = {np["metadata"]["namespace"] for np in policies
           if any(p.get("port") == 53 for e in np["spec"].get("egress", []) for p in e.get("ports", []))}
    assert egress <= dns, f"no DNS egress in {sorted(egress - dns)}"


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
    # dev's apps overlay may also generate SOPS-encrypted Secrets (README "Delivery", SOPS; tests/delivery/test_sops.py)
    sops = {"secretGenerator"} if (layer, env) == ("apps", "dev-uaenorth") else set()
    assert set(kustomization) <= {"apiVersion", "kind", "resources", "patches", *sops}, \
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

    dev_objects = [o for o in built(objects, (layer, "dev-uaenorth"))
                   if not (o["kind"] == "Secret" and sops_encrypted(o))]   # dev-only SOPS Secrets (README "Delivery")
    dev, other = index(dev_objects), index(built(objects, (layer, env)))
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


# ---------------------------------------------------------------- secrets and credentials

CREDENTIAL_KEY = re.compile(r"(?i)(^|[_.-]|admin)(password|passwd|pwd|token|api[_-]?key)$")
# Credentials charts ship as defaults (kube-prometheus-stack's Grafana: prom-operator); never in our values.
KNOWN_DEFAULTS = ("prom-operator", "changeme")


def credential_literals(node, path=()):
    """(path, value) of every string literal under a key that names a credential (a reference names a Secret
    under another key: existingSecret, secretKeyRef, passwordKey...; an external-secrets template fills one
    from the store: {{ ... }})."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str) and CREDENTIAL_KEY.search(k) and isinstance(v, str | int) and str(v) \
                    and "{{" not in str(v):
                yield (*path, k), str(v)
            else:
                yield from credential_literals(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from credential_literals(v, (*path, i))


@pytest.mark.parametrize(
    ("values", "found"),
    [({"grafana": {"adminPassword": "prom-operator"}}, True), ({"auth": {"password": "x"}}, True),
     ({"admin": {"existingSecret": "grafana-admin", "passwordKey": "admin-password"}}, False),
     ({"data": [{"secretKey": "api-key", "remoteRef": {"key": "secret/qdrant-api-key"}}]}, False),
     ({"template": {"data": {"admin-password": "{{ .password }}"}}}, False), ({"adminPassword": "x"}, True),
     ({"env": [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}, False)],
)
def test_the_credential_scan_finds_literals_and_ignores_references(values, found):
    assert bool(list(credential_literals(values))) is found


def sops_encrypted(secret: dict) -> bool:
    """A Secret whose every data value is a SOPS-encrypted file (Flux decrypts it in the cluster)."""
    import base64

    values = [base64.b64decode(v).decode(errors="replace") for v in (secret.get("data") or {}).values()]
    return bool(values) and all("\nsops:\n" in v and "ENC[AES256_GCM," in v for v in values)


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS, ids=overlay_id)
def test_no_default_or_literal_credential_in_values_or_manifests(objects, overlay):
    problems = []
    for o in built(objects, overlay):
        if o["kind"] == "Secret" and not (overlay == ("apps", "dev-uaenorth") and sops_encrypted(o)):
            # dev-uaenorth may carry SOPS-encrypted Secrets (README "Delivery", SOPS; tests/delivery/test_sops.py)
            problems.append(f"{name_of(o)}: a Secret in Git (use an ExternalSecret)")
        problems += [f"{name_of(o)}: {'.'.join(map(str, p))} is a literal" for p, _ in credential_literals(o)]
        for c in (c for _, spec in pod_specs([o]) for c in containers(spec)):
            problems += [f"{name_of(o)} {c['name']}: env {e['name']} is a literal credential"
                         for e in c.get("env") or [] if CREDENTIAL_KEY.search(e["name"]) and "value" in e]
        text = yaml.safe_dump(o)
        problems += [f"{name_of(o)}: chart default credential {d!r}" for d in KNOWN_DEFAULTS if d in text]
    assert not problems


@pytest.mark.parametrize("env", ENVS)
def test_grafana_admin_qdrant_key_and_mlflow_database_password_come_from_key_vault(objects, env):
    configs, apps = built(objects, ("infrastructure/configs", env)), built(objects, ("apps", env))
    stores = {(e["metadata"]["namespace"], e["spec"]["target"]["name"]): e["spec"]["data"][0]["remoteRef"]["key"]
              for e in find(configs + apps, "ExternalSecret") if e["spec"].get("data")}
    grafana = find(configs, "HelmRelease", "grafana")[0]["spec"]["values"]["admin"]
    assert stores[("monitoring", grafana["existingSecret"])] == "secret/grafana-admin-password"
    qdrant = find(apps, "StatefulSet", "qdrant")[0]["spec"]["template"]["spec"]["containers"][0]
    (key,) = [e for e in qdrant["env"] if e["name"] == "QDRANT__SERVICE__API_KEY"]
    assert stores[("qdrant", key["valueFrom"]["secretKeyRef"]["name"])] == "secret/qdrant-api-key"
    mlflow = find(apps, "Deployment", "mlflow")[0]["spec"]["template"]["spec"]
    (password,) = [e for e in mlflow["containers"][0]["env"] if e["name"] == "PGPASSWORD"]
    secret = platform(env)["mlflow_database"]["password_secret"]
    assert stores[("mlflow", password["valueFrom"]["secretKeyRef"]["name"])] == f"secret/{secret}"
    kps = find(built(objects, ("infrastructure/controllers", env)), "HelmRelease", "kube-prometheus-stack")[0]
    assert kps["spec"]["values"]["grafana"]["enabled"] is False, "one Grafana, the one with the Key Vault password"


@pytest.mark.parametrize("env", ENVS)
def test_mlflow_runs_on_postgresql_behind_gateway_authentication_without_a_disk(objects, env):
    apps = built(objects, ("apps", env))
    deploy = find(apps, "Deployment", "mlflow")[0]
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    (uri,) = [a for a in args if a.startswith("--backend-store-uri=")]
    db = platform(env)["mlflow_database"]  # infra's PostgreSQL Flexible Server (modules/postgresql)
    host = f"{db['server_name']}.postgres.database.azure.com"
    assert uri == (f"--backend-store-uri=postgresql://{db['administrator_login']}@{host}:5432/{db['database']}"
                   "?sslmode=require")
    assert not [o for o in apps if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["namespace"] == "mlflow"]
    (policy,) = find(apps, "SecurityPolicy", "mlflow-auth")
    route = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "mlflow"}
    assert policy["spec"]["targetRefs"] == [route]
    users = policy["spec"]["basicAuth"]["users"]["name"]
    assert [e for e in find(apps, "ExternalSecret", users) if e["metadata"]["namespace"] == "mlflow"]


# ---------------------------------------------------------------- components: Flux on AKS, GPU operators, Kyverno, vLLM


def test_the_aks_flux_extension_does_not_enforce_multi_tenancy():
    # Every HelmRelease sits in its own namespace without a service account of its own: with the extension's
    # default lockdown each would be refused. The choice is documented in gitops/README.md "Flux on AKS".
    flux = hcl(REPO / "infra" / "modules" / "aks" / "flux.tf")["resource"]
    (extension,) = [r["azurerm_kubernetes_cluster_extension"]["flux"] for r in flux
                    if "azurerm_kubernetes_cluster_extension" in r]
    assert extension["configuration_settings"]["multiTenancy.enforce"] == "false"


@pytest.mark.parametrize("env", ENVS)
def test_gpu_operators_own_mig_and_the_amd_driver_and_run_one_node_feature_discovery(objects, env):
    objs = built(objects, ("infrastructure/controllers", env))
    nvidia = find(objs, "HelmRelease", "gpu-operator")[0]["spec"]["values"]
    amd = find(objs, "HelmRelease", "amd-gpu-operator")[0]["spec"]["values"]
    assert {"name": "WITH_REBOOT", "value": "true"} in nvidia["migManager"]["env"]
    assert nvidia["migManager"]["enabled"] is True
    # one NFD: the NVIDIA chart's, labelling both pools
    assert nvidia["nfd"]["enabled"] is True and amd["node-feature-discovery"]["enabled"] is False
    keys = {t["key"] for t in nvidia["node-feature-discovery"]["worker"]["tolerations"]}
    assert keys == {"nvidia.com/gpu", "amd.com/gpu"}
    # the operator owns amdgpu (the pool installs no driver)
    driver = amd["deviceConfig"]["spec"]["driver"]
    assert driver["enable"] is True and amd["kmm"]["enabled"] is True


@pytest.mark.parametrize("env", ENVS)
def test_kyverno_webhook_exclusions_are_an_object_and_policies_are_validating_policies(objects, env):
    controllers = built(objects, ("infrastructure/controllers", env))
    webhooks = find(controllers, "HelmRelease", "kyverno")[0]["spec"]["values"]["config"]["webhooks"]
    assert isinstance(webhooks, dict) and "namespaceSelector" in webhooks
    configs = built(objects, ("infrastructure/configs", env))
    assert not find(configs, "ClusterPolicy")
    assert {p["metadata"]["name"] for p in find(configs, "ValidatingPolicy")} == {
        "gpu-pools", "platform-registry-only", "pod-security-baseline", "require-requests-limits"}


# vLLM flags removed upstream (flag -> release that removed it) and flags the tracing setup needs.
VLLM_REMOVED_FLAGS = {"--disable-log-requests": "0.12", "--disable-log-stats-requests": "0.12"}


@pytest.mark.parametrize("env", ENVS)
def test_vllm_flags_are_valid_for_the_pinned_release_and_trace_to_tempo(objects, env):
    vllm = find(built(objects, ("apps", env)), "Deployment", "vllm-h100")[0]["spec"]["template"]["spec"]
    args = vllm["containers"][0]["args"]
    flags = {a.split("=", 1)[0] for a in args}
    assert not flags & set(VLLM_REMOVED_FLAGS)
    assert "--otlp-traces-endpoint=http://tempo.monitoring.svc.cluster.local:4317" in args
    (claim,) = [v for v in vllm["volumes"] if v["name"] == "models"]
    assert claim["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
