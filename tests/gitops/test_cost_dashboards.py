"""Cost dashboards and their recording rules: valid JSON, provisioned like the others, and every metric a
query names is one the exporters deployed here publish (or a rule records); no price written in them."""

from __future__ import annotations

import json
import re

import promql_parser
import pytest
import yaml

from .conftest import GITOPS

MONITORING = GITOPS / "infrastructure" / "configs" / "base" / "monitoring"
DASHBOARDS = ("capacity-cost.json", "cost-namespace.json", "cost-model.json", "cost-gpu-idle.json")
RULES = ("rules-capacity.yaml", "rules-cost.yaml")

# What each deployed exporter publishes (the names these queries may use), from its source:
# OpenCost: pkg/costmodel/metrics.go (opencost/opencost), the cost model's Prometheus metrics.
OPENCOST = {"node_cpu_hourly_cost", "node_ram_hourly_cost", "node_gpu_hourly_cost", "node_total_hourly_cost",
            "node_gpu_count", "container_cpu_allocation", "container_memory_allocation_bytes",
            "container_gpu_allocation", "pod_pvc_allocation", "pv_hourly_cost", "kubecost_node_is_spot",
            "kubecost_cluster_management_cost", "kubecost_load_balancer_cost"}
# vLLM's OpenAI server: vllm/v1/metrics/loggers.py (vllm-project/vllm), every series labelled model_name.
VLLM = {"vllm:request_success_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
        "vllm:num_requests_running", "vllm:num_requests_waiting"}
# kube-state-metrics v2 (kube-prometheus-stack): docs/metrics/workload/pod-metrics.md and friends.
KUBE_STATE_METRICS = {"kube_pod_info", "kube_pod_labels", "kube_namespace_labels", "kube_node_labels",
                      "kube_pod_container_resource_requests", "kube_pod_status_phase"}
EXPORTED = OPENCOST | VLLM | KUBE_STATE_METRICS

def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects, from its syntax tree (Grafana's $__range read as 1h). A query
    that does not parse fails here."""
    return set(_selected(promql_parser.parse(re.sub(r"\$__\w+", "1h", expr))))


def _selected(node: object):
    if isinstance(node, promql_parser.VectorSelector):
        yield node.name
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from _selected(node.vector_selector)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from _selected(node.lhs)
        yield from _selected(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from _selected(arg)
    elif isinstance(node, promql_parser.AggregateExpr | promql_parser.ParenExpr | promql_parser.UnaryExpr
                    | promql_parser.SubqueryExpr):
        yield from _selected(node.expr)


PARSES = {
    "a recorded series with a matcher and a range": (
        'sum_over_time(platform:x:sum{a="b"}[$__range]) / 60', {"platform:x:sum"}),
    "a join keeps both sides and drops the grouping labels": (
        "a * on (node) group_left (model_name) max by (node, model_name) (vllm:num_requests_running)",
        {"a", "vllm:num_requests_running"}),
    "numbers and keywords are not series": ("1e6 * b or c * 0.5 unless d", {"b", "c", "d"}),
    "a function of a function of a series": ("sort_desc(sum(rate(vllm:request_success_total[5m])))",
                                            {"vllm:request_success_total"}),
}


def test_a_query_that_is_not_promql_fails() -> None:
    with pytest.raises(ValueError):
        metric_names("sum by (node (x)")


@pytest.mark.parametrize("behaviour", sorted(PARSES))
def test_metric_names_are_read_out_of_promql(behaviour: str) -> None:
    expr, names = PARSES[behaviour]
    assert metric_names(expr) == names


def rules() -> list[dict]:
    out = []
    for name in RULES:
        for group in yaml.safe_load((MONITORING / name).read_text())["spec"]["groups"]:
            out += group["rules"]
    return out


def dashboard_queries(name: str) -> list[str]:
    board = json.loads((MONITORING / "dashboards" / name).read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


RECORDED = {r["record"] for r in rules() if "record" in r}


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_dashboard_query_names_only_exported_or_recorded_metrics(name: str) -> None:
    unknown = {n for expr in dashboard_queries(name) for n in metric_names(expr)} - EXPORTED - RECORDED
    assert not unknown, f"{name}: no deployed exporter or rule provides {sorted(unknown)}"


def test_every_recording_and_alert_rule_names_only_exported_or_recorded_metrics() -> None:
    unknown = {n for r in rules() for n in metric_names(r["expr"])} - EXPORTED - RECORDED
    assert not unknown, f"no deployed exporter or rule provides {sorted(unknown)}"


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_cost_dashboard_is_provisioned_through_the_dashboard_sidecar(name: str) -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert kustomization["generatorOptions"]["labels"] == {"grafana_dashboard": "1"}
    assert any(f"dashboards/{name}" in g["files"] for g in kustomization["configMapGenerator"])
    board = json.loads((MONITORING / "dashboards" / name).read_text())
    assert board["uid"].startswith("platform-") and all(p["datasource"]["uid"] == "${datasource}"
                                                        for p in board["panels"])


def test_the_labels_cost_is_grouped_by_are_exported_by_kube_state_metrics() -> None:
    values = yaml.safe_load((GITOPS / "infrastructure" / "controllers" / "base" / "monitoring"
                             / "kube-prometheus-stack.yaml").read_text())["spec"]["values"]
    allow = {entry.split("=", 1)[0]: entry.split("=", 1)[1].strip("[]").split(",")
             for entry in values["kube-state-metrics"]["metricLabelsAllowlist"]}
    used = {(m.group(1), m.group(2)) for r in rules()
            for m in re.finditer(r"label_(\w+)\) \(kube_(pod|namespace)_labels", r["expr"].replace("\n", " "))}
    used = {(kind, label) for label, kind in used}
    assert used == {("namespace", "team"), ("pod", "tenant")}
    for kind, label in used:
        assert label in allow[f"{kind}s"], f"kube-state-metrics does not export {kind} label {label}"


def test_no_price_is_written_in_the_rules_or_dashboards() -> None:
    # The hand-kept table (request x list price) is gone: prices come from OpenCost, fed by the price file.
    texts = [(MONITORING / n).read_text() for n in RULES] + \
        [(MONITORING / "dashboards" / n).read_text() for n in DASHBOARDS]
    for text in texts:
        assert "cost_per_hour:estimate" not in text
        assert not re.search(r"kube_pod_container_resource_requests[^\n]*\*\s*\d+\.\d+", text)
