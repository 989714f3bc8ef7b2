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
