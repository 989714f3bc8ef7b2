"""OpenCost as gitops deploys it: priced from the platform's price file, reading and scraped by the
cluster's Prometheus, named after each environment's cluster."""

from __future__ import annotations

import pytest

from shared.services import cost_prices

from .conftest import ENVS, find, platform

LAYER = "infrastructure/controllers"


def opencost(objects, env: str) -> tuple[dict, list[dict]]:
    if (LAYER, env) not in objects:
        pytest.skip("the controllers overlay does not build (see test_every_overlay_builds)")
    objs = objects[(LAYER, env)]
    [release] = find(objs, "HelmRelease", "opencost")
    return release, objs


@pytest.mark.parametrize("env", ENVS)
def test_opencost_prices_with_the_config_map_generated_from_the_price_file(objects, env):
    release, objs = opencost(objects, env)
    pricing = release["spec"]["values"]["opencost"]["customPricing"]
    assert pricing["enabled"] and not pricing["createConfigmap"] and pricing["provider"] == "custom"
    [config_map] = find(objs, "ConfigMap", pricing["configmapName"])
    assert config_map["metadata"]["namespace"] == release["metadata"]["namespace"]
    generated = dict(line.split("=", 1) for line in cost_prices.OPENCOST_ENV.read_text().splitlines()
                     if line and not line.startswith("#"))
    assert config_map["data"] == generated


@pytest.mark.parametrize("env", ENVS)
def test_opencost_reads_the_platform_prometheus_and_is_scraped_by_it(objects, env):
    release, objs = opencost(objects, env)
    values = release["spec"]["values"]["opencost"]
    internal = values["prometheus"]["internal"]
    [prometheus] = find(objs, "HelmRelease", "kube-prometheus-stack")
    assert (internal["serviceName"], internal["namespaceName"], internal["port"]) == \
        (f"{prometheus['metadata']['name']}-prometheus", prometheus["metadata"]["namespace"], 9090)
    assert values["metrics"]["serviceMonitor"]["enabled"]
    assert {"name": "kube-prometheus-stack"} in release["spec"]["dependsOn"]


@pytest.mark.parametrize("env", ENVS)
def test_opencost_names_the_environments_cluster(objects, env):
    release, _ = opencost(objects, env)
    assert release["spec"]["values"]["opencost"]["exporter"]["defaultClusterId"] == platform(env)["cluster"]["name"]


@pytest.mark.parametrize("env", ENVS)
def test_pod_and_namespace_labels_team_model_tenant_reach_prometheus_for_allocation(objects, env):
    _, objs = opencost(objects, env)
    [prometheus] = find(objs, "HelmRelease", "kube-prometheus-stack")
    allow = prometheus["spec"]["values"]["kube-state-metrics"]["metricLabelsAllowlist"]
    pods = next(a for a in allow if a.startswith("pods="))
    assert {"team", "model", "tenant"} <= set(pods[len("pods=["):-1].split(","))


@pytest.mark.parametrize("env", ENVS)
def test_every_app_namespace_names_its_team_and_vllm_pods_their_model_for_allocation(objects, env):
    if ("apps", env) not in objects:
        pytest.skip("the apps overlay does not build (see test_every_overlay_builds)")
    objs = objects[("apps", env)]
    assert all(ns["metadata"].get("labels", {}).get("team") for ns in find(objs, "Namespace"))
    for deployment in find(objs, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            served = [a.split("=", 1)[1] for a in container.get("args", []) if a.startswith("--served-model-name=")]
            if served:
                labels = deployment["spec"]["template"]["metadata"]["labels"]
                assert labels.get("model") == served[0] and labels.get("tenant"), deployment["metadata"]["name"]


# -- OpenCost's API for the automation app: internal route, Entra ID JWT, network policy -----------------

OPENCOST_POD = {"app.kubernetes.io/name": "opencost", "app.kubernetes.io/instance": "opencost"}
INTERNAL_PROXIES = {"gateway.envoyproxy.io/owning-gateway-name": "internal",
                    "gateway.envoyproxy.io/owning-gateway-namespace": "gateways"}


def configs(objects, env: str) -> list[dict]:
    if ("infrastructure/configs", env) not in objects:
        pytest.skip("the configs overlay does not build (see test_every_overlay_builds)")
    return objects[("infrastructure/configs", env)]


@pytest.mark.parametrize("env", ENVS)
def test_opencosts_api_is_routed_read_only_on_the_internal_gateway_under_the_declared_hostname(objects, env):
    release, _ = opencost(objects, env)
    [route] = find(configs(objects, env), "HTTPRoute", "opencost")
    declared = platform(env)["cost"]["opencost"]
    assert route["metadata"]["namespace"] == release["metadata"]["namespace"]
    assert [(p["namespace"], p["name"]) for p in route["spec"]["parentRefs"]] == [("gateways", "internal")]
    assert route["spec"]["hostnames"] == [declared["hostname"]]
    for rule in route["spec"]["rules"]:
        assert [(b["name"], b["port"]) for b in rule["backendRefs"]] == [("opencost", 9003)]
        assert rule["matches"] and all(m.get("method") == "GET" for m in rule["matches"])
        assert all(m["path"]["value"].startswith("/allocation") for m in rule["matches"])


@pytest.mark.parametrize("env", ENVS)
def test_opencosts_route_admits_only_an_entra_token_for_the_declared_audience_with_the_app_role(objects, env):
    [policy] = find(configs(objects, env), "SecurityPolicy", "opencost")
    facts = platform(env)
    declared, tenant = facts["cost"]["opencost"], facts["tenant_id"]
    spec = policy["spec"]
    assert policy["metadata"]["namespace"] == "monitoring"
    assert [(t["kind"], t["name"]) for t in spec["targetRefs"]] == [("HTTPRoute", "opencost")]
    [provider] = spec["jwt"]["providers"]
    assert provider["issuer"] == f"https://sts.windows.net/{tenant}/"
    assert provider["audiences"] == [declared["audience"]]
    assert provider["remoteJWKS"]["uri"] == f"https://login.microsoftonline.com/{tenant}/discovery/keys"
    assert not provider.get("forwardOriginalToken"), "OpenCost needs no token: Envoy strips it"
    authz = spec["authorization"]
    assert authz["defaultAction"] == "Deny"
    allows = [r for r in authz["rules"] if r["action"] == "Allow"]
    assert allows
    for rule in allows:
        jwt = rule["principal"]["jwt"]
        assert jwt["provider"] == provider["name"]
        assert {"name": "roles", "valueType": "StringArray", "values": [declared["app_role"]]} in jwt["claims"]


def _selects_opencost(policy: dict) -> bool:
    labels = policy["spec"].get("podSelector", {}).get("matchLabels", {})
    return labels.items() <= OPENCOST_POD.items() and not policy["spec"]["podSelector"].get("matchExpressions")


def _admits_port(rule: dict, port: int) -> bool:
    return not rule.get("ports") or any(p.get("port") == port for p in rule["ports"])


def _peer_is_internal_gateway_or_monitoring(peer: dict) -> bool:
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        return "ipBlock" not in peer  # a bare podSelector: monitoring itself (Prometheus' scrapes)
    names = namespaces.get("matchLabels", {}).get("kubernetes.io/metadata.name")
    if names == "monitoring" and not namespaces.get("matchExpressions"):
        return True
    return names == "envoy-gateway-system" and peer.get("podSelector", {}).get("matchLabels") == INTERNAL_PROXIES


@pytest.mark.parametrize("env", ENVS)
def test_only_the_internal_gateways_proxies_reach_opencosts_port_from_outside_monitoring(objects, env):
    _, controllers = opencost(objects, env)
    policies = [p for p in find(controllers + configs(objects, env), "NetworkPolicy")
                if p["metadata"]["namespace"] == "monitoring" and _selects_opencost(p)]
    assert any(p["spec"].get("podSelector") == {} and not p["spec"].get("ingress") for p in policies), "default deny"
    admitting = [(p["metadata"]["name"], peer) for p in policies for rule in p["spec"].get("ingress", [])
                 if _admits_port(rule, 9003) for peer in rule.get("from", [{"ipBlock": {"cidr": "0.0.0.0/0"}}])]
    assert not [a for a in admitting if not _peer_is_internal_gateway_or_monitoring(a[1])]
    assert any(peer.get("podSelector", {}).get("matchLabels") == INTERNAL_PROXIES for _, peer in admitting)
