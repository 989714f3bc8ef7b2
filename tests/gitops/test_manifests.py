"""gitops/ parses, every overlay builds, and every built object validates against its schema."""

from __future__ import annotations

import json
import re
from functools import cache

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .conftest import (
    ENVS,
    GITOPS,
    OVERLAYS,
    SCHEMAS,
    crd_schema,
    kubernetes_version,
    name_of,
    overlay_id,
    platform,
    versions,
)

YAML_FILES = sorted(p for p in GITOPS.rglob("*") if p.suffix in (".yaml", ".yml"))
JSON_FILES = sorted(GITOPS.rglob("*.json"))
@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(GITOPS)))
def test_every_yaml_file_parses(path):
    docs = list(yaml.safe_load_all(path.read_text()))
    assert any(d is not None for d in docs), "empty YAML file"


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(GITOPS)))
def test_every_json_file_parses(path):
    json.loads(path.read_text())


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_id)
def test_every_overlay_builds(builds, overlay):
    result = builds[overlay]
    if isinstance(result, Exception):
        pytest.fail(str(result))
    assert result, "overlay built no objects"


@pytest.mark.parametrize("env", ENVS)
def test_kubernetes_validate_ships_the_cluster_version(env):
    # The version is infra's pin (platform.yaml cluster.kubernetes_version), never restated in gitops/; the
    # package must carry that exact minor, not fall back to an older schema set.
    version = kubernetes_version(env)
    assert kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, version, strict=True
    ) == platform(env)["cluster"]["kubernetes_version"]


@cache
def crd_validator(api_version: str, kind: str):
    schema = crd_schema(api_version, kind)
    return jsonschema.Draft202012Validator(schema) if schema is not None else None


# API groups under k8s.io that no Kubernetes release serves: they arrive as CRDs (Gateway API, bundled by
# Envoy Gateway's chart), so their schemas are kept in gitops/schemas like any other custom resource.
CRD_GROUPS_UNDER_K8S_IO = {"gateway.networking.k8s.io"}


def is_custom(api_version: str) -> bool:
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." in group and (not group.endswith(".k8s.io") or group in CRD_GROUPS_UNDER_K8S_IO)


def schema_errors(obj: dict, k8s_version: str = kubernetes_version(ENVS[0])) -> list[str]:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    if is_custom(api_version):
        validator = crd_validator(api_version, kind)
        if validator is None:
            return [f"no schema for {api_version} {kind}: add it to gitops/schemas/versions.yaml"]
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]
    try:
        kubernetes_validate.validate(obj, k8s_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{api_version} {kind} is not served by Kubernetes {k8s_version}"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path)) or '<root>'}: {exc.message[:300]}"]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS, ids=overlay_id)
def test_every_built_object_validates_against_its_schema(objects, overlay):
    if overlay not in objects:
        pytest.skip("overlay does not build (see test_every_overlay_builds)")
    version = kubernetes_version(overlay[1])
    failures = {name_of(o): errs for o in objects[overlay] if (errs := schema_errors(o, version))}
    assert not failures, json.dumps(failures, indent=1)


def test_every_custom_resource_schema_is_listed_with_its_version():
    listed = {f"{k['group']}/{k['version']}/{k['kind']}.json" for p in versions()["npm"] for k in p["kinds"]}
    listed |= {f"{k['group']}/{k['version']}/{k['kind']}.json" for k in versions()["handwritten"]}
    listed |= {f"{k['group']}/{k['version']}/{k['kind']}.json" for k in versions()["crd"]}
    # Helm values schemas are listed in values/index.yaml (test_values_schemas.py).
    on_disk = {str(p.relative_to(SCHEMAS)) for p in SCHEMAS.rglob("*.json") if p.parent != SCHEMAS / "values"}
    assert on_disk == listed


@pytest.mark.parametrize("path", sorted(SCHEMAS.rglob("*.json")), ids=lambda p: str(p.relative_to(SCHEMAS)))
def test_every_schema_is_valid_json_schema_with_python_compatible_patterns(path):
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)

    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for v in node.values():
                yield from patterns(v)
        elif isinstance(node, list):
            for v in node:
                yield from patterns(v)

    for pattern in patterns(schema):
        re.compile(pattern)


# The schemas must reject what the API server would: a few known-bad objects, one per schema family.
BAD_OBJECTS = [
    ("misspelt HelmRelease field", {
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "x"},
        "spec": {"interval": "1h", "dependOn": [],
                 "chart": {"spec": {"chart": "c", "sourceRef": {"kind": "HelmRepository", "name": "r"}}}}}),
    ("Kustomization without prune", {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "x"},
        "spec": {"interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "r"}}}),
    ("ScaledObject trigger without type", {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "d"}, "triggers": [{"metadata": {}}]}}),
    ("ExternalSecret with a numeric refreshInterval", {
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "x"},
        "spec": {"refreshInterval": 5}}),
    ("PrometheusRule rule without expr", {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "x"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A"}]}]}}),
    # kyverno.io/v1 ClusterPolicy is deprecated (Kyverno 1.17) and gone from this repository: its schema went
    # with it, so a ClusterPolicy now fails as a kind without a schema; the CEL ValidatingPolicy replaces it.
    ("ClusterPolicy (retired kind)", {
        "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "x"},
        "spec": {"rules": [{"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                            "validate": {"failureAction": "Enforce", "pattern": {}}}]}}),
    ("ValidatingPolicy with a misspelt validations field", {
        "apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy", "metadata": {"name": "x"},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                         "operations": ["CREATE"], "resources": ["pods"]}]},
                 "validations": [{"expresion": "true"}]}}),
    ("HTTPRoute without parentRefs and with a misspelt rule field", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "x"},
        "spec": {"parentRefs": [], "rules": [{"backendRef": [{"name": "s", "port": 80}]}]}}),
    ("Gateway listener with an unknown protocol", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "x"},
        "spec": {"gatewayClassName": "envoy", "listeners": [{"name": "h", "port": 443, "protocol": "HTTPZ"}]}}),
    ("ClientTrafficPolicy with client validation but no CA", {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "ClientTrafficPolicy", "metadata": {"name": "x"},
        "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "g"}],
                 "tls": {"clientValidation": {"caCertificateRefs": []}}}}),
    ("Certificate without issuerRef", {
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "x"},
        "spec": {"secretName": "s"}}),
    ("Deployment with a misspelt container field", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "c", "image": "i:1", "resourcess": {}}]}}}}),
]


@pytest.mark.parametrize(("case", "obj"), BAD_OBJECTS, ids=[c for c, _ in BAD_OBJECTS])
def test_schemas_reject_known_bad_objects(case, obj):
    assert schema_errors(obj), f"{case} was accepted"
