"""Who sizes the GPU serving Deployments, and what the automation app may do in the cluster to size them.

The gpu_scaling function (README "GPU scaling") sets the replicas of each pool's `serving_deployment`
(platform.yaml) wherever it acts; where it only decides (dry run: prd by default, infra/modules/automation
`gpu_scaling_dry_run_by_tier`), KEDA's ScaledObject keeps sizing it. Exactly one of the two, per environment.
The Kubernetes RBAC bound to the app's managed identity allows what the scaling code calls, and nothing else.
"""

from __future__ import annotations

import ast
import re

import pytest

from .conftest import ENVS, INFRA_MODULES, REPO, find, hcl, platform, tf_locals

PAUSED = "autoscaling.keda.sh/paused"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
SUBJECT = "${AUTOMATION_PRINCIPAL_ID}"
SCALING_CODE = REPO / "shared" / "services" / "scaling" / "tick.py"


def apps(objects, env):
    if ("apps", env) not in objects:
        pytest.skip(f"apps/{env} does not build (see test_every_overlay_builds)")
    return objects[("apps", env)]


def function_acts(env: str) -> bool:
    """Whether gpu_scaling changes anything in env: enabled and not a dry run, as infra sets the app settings."""
    call = next(m["automation"] for m in hcl(INFRA_MODULES / "platform" / "main.tf")["module"] if "automation" in m)
    for setting in ("gpu_scaling_enabled", "gpu_scaling_dry_run"):
        assert setting not in call, (f"modules/platform passes {setting}: teach this check to read it "
                                     "(it decides whether KEDA or the function sizes the serving Deployments)")
    variables = {}
    for path in sorted((INFRA_MODULES / "automation").glob("*.tf")):
        for entry in hcl(path).get("variable", []):
            variables.update(entry)
    enabled = variables["gpu_scaling_enabled"]["default"]
    dry_run = tf_locals("automation")["gpu_scaling_dry_run_by_tier"][env.split("-")[0]]
    return bool(enabled) and not dry_run


def serving_deployments(env: str) -> set[tuple[str, str]]:
    """(namespace, name) of every pool's serving Deployment."""
    return {tuple(p["serving_deployment"].split("/", 1)) for p in platform(env)["gpu_pools"]
            if p.get("serving_deployment")}


def scalers_of(objs: list[dict], namespace: str, name: str) -> list[dict]:
    """ScaledObjects and HorizontalPodAutoscalers whose target is Deployment namespace/name."""
    found = []
    for o in objs:
        if o["kind"] == "ScaledObject":
            ref = o["spec"]["scaleTargetRef"]
            kind = ref.get("kind", "Deployment")
        elif o["kind"] == "HorizontalPodAutoscaler":
            ref = o["spec"]["scaleTargetRef"]
            kind = ref["kind"]
        else:
            continue
        if kind == "Deployment" and ref["name"] == name and o["metadata"].get("namespace") == namespace:
            found.append(o)
    return found


# KEDA (ScaledObject.NeedToBePausedByAnnotation) parses the annotation with Go's strconv.ParseBool; a value
# that is not a boolean also pauses.
PARSE_BOOL_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def sets_replicas(scaler: dict) -> bool:
    """A paused ScaledObject leaves replicas alone (KEDA removes its HPA); paused-replicas pins them."""
    annotations = scaler["metadata"].get("annotations") or {}
    if scaler["kind"] != "ScaledObject" or PAUSED_REPLICAS in annotations:
        return True
    return PAUSED not in annotations or annotations[PAUSED] in PARSE_BOOL_FALSE


def test_prd_is_the_environment_where_the_function_only_decides():
    # The pairing below is only meaningful if the tiers differ; this is the default the README explains.
    assert [env for env in ENVS if not function_acts(env)] == ["prd-uaenorth"]


@pytest.mark.parametrize("env", ENVS)
def test_every_serving_deployment_exists_and_leaves_replicas_to_its_scaler(objects, env):
    objs = apps(objects, env)
    assert serving_deployments(env), "platform.yaml names no serving_deployment"
    for namespace, name in serving_deployments(env):
        (deployment,) = [d for d in find(objs, "Deployment", name) if d["metadata"].get("namespace") == namespace]
        assert "replicas" not in deployment["spec"], f"{namespace}/{name}: Flux would reset what the scaler sets"


@pytest.mark.parametrize("env", ENVS)
def test_no_scaled_object_sizes_a_deployment_the_scaling_function_owns(objects, env):
    if not function_acts(env):
        pytest.skip(f"gpu_scaling only decides in {env}: KEDA sizes the serving Deployments there")
    objs = apps(objects, env)
    for namespace, name in serving_deployments(env):
        active = [s["metadata"]["name"] for s in scalers_of(objs, namespace, name) if sets_replicas(s)]
        assert not active, (f"{env}: {namespace}/{name} is sized by gpu_scaling, yet {active} also set its "
                            f"replicas; pause them ({PAUSED}: \"true\") or remove them")


@pytest.mark.parametrize("env", ENVS)
def test_a_serving_deployment_the_function_does_not_size_is_sized_by_exactly_one_scaled_object(objects, env):
    if function_acts(env):
        pytest.skip(f"gpu_scaling sizes the serving Deployments in {env}")
    objs = apps(objects, env)
    for namespace, name in serving_deployments(env):
        active = [s for s in scalers_of(objs, namespace, name) if sets_replicas(s)]
        assert [s["kind"] for s in active] == ["ScaledObject"], (
            f"{env}: gpu_scaling only decides here, so KEDA must size {namespace}/{name} (one active ScaledObject)")


@pytest.mark.parametrize(
    ("scaler", "sets"),
    [
        ({"kind": "ScaledObject", "metadata": {}}, True),
        ({"kind": "ScaledObject", "metadata": {"annotations": {PAUSED: "true"}}}, False),
        ({"kind": "ScaledObject", "metadata": {"annotations": {PAUSED: "false"}}}, True),
        ({"kind": "ScaledObject", "metadata": {"annotations": {PAUSED: "yes"}}}, False),
        ({"kind": "ScaledObject", "metadata": {"annotations": {PAUSED: "true", PAUSED_REPLICAS: "2"}}}, True),
        ({"kind": "HorizontalPodAutoscaler", "metadata": {"annotations": {PAUSED: "true"}}}, True),
    ],
    ids=["active", "paused", "paused-false", "not-a-boolean-pauses", "paused-replicas-pins", "hpa"],
)
def test_only_a_paused_scaled_object_leaves_replicas_alone(scaler, sets):
    assert sets_replicas(scaler) is sets


# ------------------------------------------------------------------------------------------------ RBAC

VERBS = {"nodes": "list", "list": "list", "get": "get", "patch_merge": "patch", "pod_metrics": "get",
         "evict": "create"}


def cluster_calls() -> set[tuple[str, str, str]]:
    """(api group, resource, verb) of every Kubernetes call the scaling code makes through the adapter."""
    calls = set()
    for node in ast.walk(ast.parse(SCALING_CODE.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "cluster"):
            continue
        method = node.func.attr
        assert method in VERBS, f"tick.py calls cluster.{method}: add its verb to VERBS"
        if method == "nodes":
            calls.add(("", "nodes", "list"))
            continue
        if method == "pod_metrics":  # GET .../pods/{name}:{port}/proxy/metrics: the pods/proxy subresource
            calls.add(("", "pods/proxy", "get"))
            continue
        if method == "evict":  # POST .../pods/{name}/eviction: the pods/eviction subresource
            calls.add(("", "pods/eviction", "create"))
            continue
        api_version, plural = (a.value for a in node.args[:2])
        group = "" if api_version == "v1" else api_version.split("/")[0]
        calls.add((group, plural, VERBS[method]))
    return calls


# Bindings of the automation identity checked elsewhere, by the test of the code that needs them.
OTHER_CAPABILITIES = {"platform-automation-model-routing": "tests/gitops/test_ai_gateway.py"}


def automation_bindings(objs: list[dict], *, every: bool = False) -> list[dict]:
    """The automation identity's bindings for GPU scaling (``every``: all of them)."""
    return [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
            and any(s.get("kind") == "User" and s.get("name") == SUBJECT for s in o.get("subjects") or [])
            and (every or o["metadata"]["name"] not in OTHER_CAPABILITIES)]


def granted(objs: list[dict]) -> list[tuple[str | None, dict]]:
    """(namespace or None for cluster-wide, rule) of every rule bound to the automation identity."""
    rules = []
    for binding in automation_bindings(objs):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        candidates = [r for r in find(objs, ref["kind"], ref["name"])
                      if ref["kind"] == "ClusterRole" or r["metadata"].get("namespace") == namespace]
        assert len(candidates) == 1, f"{binding['metadata']['name']}: {ref['kind']}/{ref['name']} is not in the build"
        rules += [(namespace, rule) for rule in candidates[0]["rules"]]
    return rules


def allows(rules, namespace, group, resource, verb, name=None) -> bool:
    for rule_namespace, rule in rules:
        if rule_namespace not in (None, namespace):
            continue
        if (group in rule.get("apiGroups", []) and resource in rule.get("resources", [])
                and verb in rule.get("verbs", [])
                and (not rule.get("resourceNames") or name in rule["resourceNames"])):
            return True
    return False


def test_the_scaling_code_makes_the_calls_this_check_expects():
    assert cluster_calls() == {("", "nodes", "list"), ("", "nodes", "patch"), ("", "pods", "list"),
                               ("", "pods", "patch"), ("apps", "deployments", "get"), ("apps", "deployments", "patch"),
                               ("", "pods/proxy", "get"), ("", "pods/eviction", "create")}


@pytest.mark.parametrize("env", ENVS)
def test_the_automation_identity_may_make_every_call_gpu_scaling_makes(objects, env):
    rules = granted(apps(objects, env))
    assert rules, f"{env}: nothing is bound to {SUBJECT}"
    for namespace, deployment in serving_deployments(env):
        for group, resource, verb in sorted(cluster_calls()):
            name = deployment if resource == "deployments" else None
            target_namespace = None if resource == "nodes" else namespace
            assert allows(rules, target_namespace, group, resource, verb, name), (
                f"{env}: the automation identity may not {verb} {resource} ({target_namespace or 'cluster'})")


@pytest.mark.parametrize("env", ENVS)
def test_the_automation_identity_gets_nothing_more(objects, env):
    objs = apps(objects, env)
    serving = serving_deployments(env)
    needed = cluster_calls() | {(g, r, "get") for g, r, _ in cluster_calls()}
    for namespace, rule in granted(objs):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), f"{env}: wildcard {field} granted to the automation identity"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert (group, resource, verb) in needed, f"{env}: {verb} {group}/{resource} is not needed"
        if "nodes" in rule["resources"]:
            assert namespace is None
        else:
            assert namespace in {ns for ns, _ in serving}, f"{env}: a grant outside the serving namespaces"
        if "deployments" in rule["resources"]:
            assert set(rule.get("resourceNames") or []) <= {n for ns, n in serving if ns == namespace} and \
                rule.get("resourceNames"), f"{env}: deployments other than the serving ones"
    kinds = sorted(b["kind"] for b in automation_bindings(objs))
    assert kinds == ["ClusterRoleBinding", "RoleBinding"], kinds
    others = {b["metadata"]["name"] for b in automation_bindings(objs, every=True)} - {
        b["metadata"]["name"] for b in automation_bindings(objs)}
    assert others <= set(OTHER_CAPABILITIES), f"{env}: unchecked grants to the automation identity: {others}"


def test_the_rbac_subject_is_the_principal_terraform_substitutes():
    # Kubernetes RBAC knows an Entra service principal by its object ID; Terraform passes the app identity's.
    assert tf_locals("aks")["flux_platform_variables"]["AUTOMATION_PRINCIPAL_ID"] == "${var.automation_principal_id}"
    call = next(m["aks"] for m in hcl(INFRA_MODULES / "platform" / "main.tf")["module"] if "aks" in m)
    assert call["automation_principal_id"] == "${module.automation.identity.principal_id}"
    for env in ENVS:
        apps_entry = (REPO / "gitops" / "clusters" / env / "apps.yaml").read_text()
        assert re.search(r"AUTOMATION_PRINCIPAL_ID: \$\{AUTOMATION_PRINCIPAL_ID\}", apps_entry), env


# ------------------------------------------------------------------------------------ NetworkPolicy

#: Where the API server's pod proxy traffic comes from on AKS without API server VNet integration (infra/modules/aks):
#: the konnectivity agents AKS runs in kube-system.
KONNECTIVITY = ({"kubernetes.io/metadata.name": "kube-system"}, {"app": "konnectivity-agent"})


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and \
        not selector.get("matchExpressions")


@pytest.mark.parametrize("env", ENVS)
def test_the_serving_pods_admit_the_api_server_pod_proxy_on_the_port_gpu_scaling_reads(objects, env):
    objs = apps(objects, env)
    for namespace, name in serving_deployments(env):
        (deployment,) = [d for d in find(objs, "Deployment", name) if d["metadata"].get("namespace") == namespace]
        template = deployment["spec"]["template"]
        ports = {p.get("name"): p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        assert "http" in ports, f"{env}: {name} names no container port http (tick.py SERVING_PORT_NAME)"
        admitted = False
        for policy in find(objs, "NetworkPolicy"):
            if policy["metadata"].get("namespace") != namespace or \
                    not selects(policy["spec"]["podSelector"], template["metadata"]["labels"]):
                continue
            for rule in policy["spec"].get("ingress") or []:
                from_agents = any(selects(peer.get("namespaceSelector") or {"matchLabels": {"_": "_"}},
                                          KONNECTIVITY[0])
                                  and selects(peer.get("podSelector") or {"matchLabels": {"_": "_"}}, KONNECTIVITY[1])
                                  for peer in rule.get("from") or [])
                on_port = any(p.get("port") in ("http", ports["http"]) for p in rule.get("ports") or [])
                admitted |= from_agents and on_port
        assert admitted, f"{env}: no NetworkPolicy admits the konnectivity agents to {namespace}/{name}'s http port"
