"""The inference gateway (gitops/apps/base/inference-gateway) says what platform.yaml says about the models, and
its pieces fit together: routes -> AIServiceBackends -> Backends -> vLLM Services -> Deployments on the pools
the fallback lists name; API keys, token budgets and retries attach to the route the AI Gateway generates."""

from __future__ import annotations

import pytest

from shared.services import model_routing

from .conftest import ENVS, find, platform

NAMESPACE = "model-serving"
IF_NOT_PRESENT = "kustomize.toolkit.fluxcd.io/ssa"


def built(objects, layer, env):
    if (layer, env) not in objects:
        pytest.skip(f"{layer}/{env} does not build (see test_every_overlay_builds)")
    return objects[(layer, env)]


def models(env):
    return model_routing.parse_models(platform(env)["models"], pools=[p["name"] for p in platform(env)["gpu_pools"]])


def one(objs, kind, name):
    found = [o for o in find(objs, kind, name) if o["metadata"].get("namespace") == NAMESPACE]
    assert len(found) == 1, f"{kind} {NAMESPACE}/{name}: {len(found)} in the build"
    return found[0]


@pytest.mark.parametrize("env", ENVS)
def test_each_model_routes_to_its_active_backend_then_its_fallback_list_in_order(objects, env):
    objs = built(objects, "apps", env)
    route = one(objs, "AIGatewayRoute", "inference")
    rules = {r["matches"][0]["headers"][0]["value"]: r for r in route["spec"]["rules"]}
    assert set(rules) == {m.name for m in models(env)}
    for model in models(env):
        rule = rules[model.name]
        assert rule["matches"][0]["headers"][0]["name"] == "x-ai-eg-model"
        expected = [{"name": model.active_backend, "priority": 0}] + [
            {"name": e.backend, "priority": i + 1, **({"modelNameOverride": e.model} if e.model else {})}
            for i, e in enumerate(model.fallback)]
        assert rule["backendRefs"] == expected


@pytest.mark.parametrize("env", ENVS)
def test_every_backend_reaches_a_vllm_service_whose_pods_run_on_the_pool_the_list_names(objects, env):
    objs = built(objects, "apps", env)
    pool_of = {}
    for deployment in find(objs, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        # A Deployment pinned to no pool runs on the CPU pool (model_routing.CPU).
        pool = (spec.get("nodeSelector") or {}).get("kubernetes.azure.com/agentpool") or model_routing.CPU
        pool_of[deployment["metadata"]["name"]] = (pool, deployment["spec"]["template"]["metadata"]["labels"])
    for model in models(env):
        for entry in model.fallback:
            service_backend = one(objs, "AIServiceBackend", entry.backend)
            assert service_backend["spec"]["schema"]["name"] == "OpenAI"
            ref = service_backend["spec"]["backendRef"]
            backend = one(objs, "Backend", ref["name"])
            (endpoint,) = backend["spec"]["endpoints"]
            assert endpoint["fqdn"] == {"hostname": entry.hostname, "port": model_routing.SERVICE_PORT}
            service = one(objs, "Service", entry.backend)
            assert model_routing.SERVICE_PORT in {p["port"] for p in service["spec"]["ports"]}
            pods = [name for name, (pool, labels) in pool_of.items()
                    if service["spec"]["selector"].items() <= labels.items()]
            assert len(pods) == 1, f"{entry.backend}: {pods}"
            assert pool_of[pods[0]][0] == entry.pool, f"{entry.backend} runs on {pool_of[pods[0]][0]}"
            if entry.model:
                args = one(objs, "Deployment", pods[0])["spec"]["template"]["spec"]["containers"][0]["args"]
                assert entry.model in args and model.name in args, (
                    f"{pods[0]} must answer to {entry.model} and to {model.name} (model_routing may send it there)")


@pytest.mark.parametrize("env", ENVS)
def test_the_active_backends_are_created_once_by_flux_and_then_left_to_model_routing(objects, env):
    objs = built(objects, "apps", env)
    for model in models(env):
        backend = one(objs, "Backend", model.active_backend)
        assert backend["metadata"]["annotations"][IF_NOT_PRESENT] == "IfNotPresent"
        assert model_routing.backend_target(backend, model) == model.fallback[0].backend
        assert one(objs, "AIServiceBackend", model.active_backend)["spec"]["backendRef"]["name"] == model.active_backend
    static = [b for b in find(objs, "Backend") if not b["metadata"]["name"].endswith("-active")]
    assert static and all(IF_NOT_PRESENT not in (b["metadata"].get("annotations") or {}) for b in static)


@pytest.mark.parametrize("env", ENVS)
def test_api_keys_come_from_key_vault_and_name_the_tenant_the_rate_limits_key_on(objects, env):
    objs = built(objects, "apps", env)
    policy = one(objs, "SecurityPolicy", "inference")
    assert policy["spec"]["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                             "name": "inference"}]
    auth = policy["spec"]["apiKeyAuth"]
    (secret_ref,) = auth["credentialRefs"]
    external = one(objs, "ExternalSecret", secret_ref["name"])
    assert external["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "azure-key-vault"}
    assert external["spec"]["dataFrom"][0]["find"]["name"]["regexp"] == "^inference-key-"
    assert auth["extractFrom"] == [{"headers": ["authorization"]}] and auth["sanitize"] is True
    tenant_header = auth["forwardClientIDHeader"]
    traffic = one(objs, "BackendTrafficPolicy", "inference")
    assert traffic["spec"]["targetRefs"] == policy["spec"]["targetRefs"]
    rules = traffic["spec"]["rateLimit"]["global"]["rules"]
    assert rules and all(r["clientSelectors"] == [{"headers": [{"name": tenant_header, "type": "Distinct"}]}]
                         for r in rules)
    route = one(objs, "AIGatewayRoute", "inference")
    costs = {c["metadataKey"] for c in route["spec"]["llmRequestCosts"]}
    for rule in rules:
        assert rule["cost"]["request"] == {"from": "Number", "number": 0}
        assert rule["cost"]["response"]["metadata"]["namespace"] == "io.envoy.ai_gateway"
        assert rule["cost"]["response"]["metadata"]["key"] in costs


@pytest.mark.parametrize("env", ENVS)
def test_retries_walk_down_the_longest_fallback_list_on_429_and_5xx(objects, env):
    retry = one(built(objects, "apps", env), "BackendTrafficPolicy", "inference")["spec"]["retry"]
    assert retry["numAttemptsPerPriority"] == 1
    assert retry["numRetries"] >= max(len(m.fallback) for m in models(env))
    assert {429, 500, 502, 503, 504} <= set(retry["retryOn"]["httpStatusCodes"])
    assert "retriable-status-codes" in retry["retryOn"]["triggers"]


@pytest.mark.parametrize("env", ENVS)
def test_envoy_gateway_calls_the_ai_gateway_extension_and_has_a_rate_limit_backend(objects, env):
    controllers = built(objects, "infrastructure/controllers", env)
    (eg,) = find(controllers, "HelmRelease", "envoy-gateway")
    config = eg["spec"]["values"]["config"]["envoyGateway"]
    assert config["extensionApis"]["enableBackend"] is True
    service = config["extensionManager"]["service"]["fqdn"]
    (ai,) = find(controllers, "HelmRelease", "ai-gateway")
    assert service == {"hostname": f"ai-gateway-controller.{ai['metadata']['namespace']}.svc.cluster.local",
                       "port": 1063}
    assert ai["spec"]["dependsOn"] == [{"name": "ai-gateway-crds"}]
    assert "x-tenant-id" in ai["spec"]["values"]["controller"]["metricsRequestHeaderAttributes"]
    redis = config["rateLimit"]["backend"]["redis"]["url"]
    name, namespace = redis.split(".")[:2]
    assert [s for s in find(controllers, "Service", name) if s["metadata"]["namespace"] == namespace]


@pytest.mark.parametrize("env", ENVS)
def test_the_automation_identity_may_get_and_patch_the_active_backends_only(objects, env):
    objs = built(objects, "apps", env)
    (binding,) = [b for b in find(objs, "RoleBinding", "platform-automation-model-routing")]
    assert binding["subjects"][0]["name"] == "${AUTOMATION_PRINCIPAL_ID}"
    role = one(objs, "Role", binding["roleRef"]["name"])
    group, plural = model_routing.BACKENDS[0].split("/")[0], model_routing.BACKENDS[1]
    assert role["rules"] == [{"apiGroups": [group], "resources": [plural], "verbs": ["get", "patch"],
                              "resourceNames": [m.active_backend for m in models(env)]}]


def test_the_inference_dashboard_shows_tokens_and_requests_per_model_and_tenant():
    import json

    from .conftest import GITOPS

    board = json.loads((GITOPS / "infrastructure/configs/base/monitoring/dashboards/inference.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for metric in ("gen_ai_client_token_usage", "gen_ai_server_request_duration_seconds_count"):
        assert any(metric in e and "tenant_id" in e and "gen_ai_original_model" in e for e in exprs), metric


@pytest.mark.parametrize(("case", "obj"), [
    ("AIGatewayRoute with a misspelt backendRefs field", {
        "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "AIGatewayRoute", "metadata": {"name": "x"},
        "spec": {"rules": [{"backendRef": [{"name": "b"}]}]}}),
    ("AIServiceBackend with an unknown API schema", {
        "apiVersion": "aigateway.envoyproxy.io/v1beta1", "kind": "AIServiceBackend", "metadata": {"name": "x"},
        "spec": {"schema": {"name": "OpenAl"}, "backendRef": {"name": "b", "kind": "Backend",
                                                              "group": "gateway.envoyproxy.io"}}}),
    ("SecurityPolicy API-key auth without where to find the key", {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy", "metadata": {"name": "x"},
        "spec": {"apiKeyAuth": {"credentialRefs": [{"name": "k"}]}}}),
    ("BackendTrafficPolicy with a numeric retry timeout", {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "BackendTrafficPolicy", "metadata": {"name": "x"},
        "spec": {"retry": {"perRetry": {"timeout": 30}}}}),
], ids=lambda x: x if isinstance(x, str) else "")
def test_the_vendored_ai_gateway_schemas_reject_known_bad_objects(case, obj):
    from .test_manifests import schema_errors

    assert schema_errors(obj), f"{case} was accepted"
