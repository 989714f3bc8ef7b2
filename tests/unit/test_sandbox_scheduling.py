"""The emulated scheduler's pure parts: which taints a pod tolerates, what it requests, and that the vLLM text the
emulated serving pods answer is what the tick's strict parser reads."""

from __future__ import annotations

import pytest

from shared.local.sandbox.deployments import requests_of, template_hash, tolerates, vllm_metrics_text
from shared.services.scaling import serving_metrics

GPU = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


@pytest.mark.parametrize(("tolerations", "expected"), [
    pytest.param([{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}], True,
                 id="equal key, value and effect"),
    pytest.param([{"key": "nvidia.com/gpu", "value": "present"}], True, id="no effect matches every effect"),
    pytest.param([{"key": "nvidia.com/gpu", "operator": "Exists"}], True, id="exists ignores the value"),
    pytest.param([{"operator": "Exists"}], True, id="an empty key with exists tolerates everything"),
    pytest.param([{"key": "nvidia.com/gpu", "value": "absent"}], False, id="another value"),
    pytest.param([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}], False,
                 id="another effect"),
    pytest.param([{"key": "amd.com/gpu", "operator": "Exists"}], False, id="another key"),
    pytest.param([], False, id="no toleration"),
])
def test_a_pod_tolerates_a_taint_as_the_scheduler_matches_them(tolerations, expected):
    assert tolerates(tolerations, GPU) is expected


def test_gpu_requests_count_and_default_to_the_limit_cpu_and_memory_do_not():
    pod = {"spec": {"containers": [
        {"resources": {"requests": {"cpu": "12", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}},
        {"resources": {"limits": {"amd.com/gpu": 2, "memory": "1Gi"}}},
        {}]}}
    assert requests_of(pod) == {"nvidia.com/gpu": 1, "amd.com/gpu": 2}


def test_the_template_hash_is_stable_and_follows_the_template():
    template = {"metadata": {"labels": {"app": "vllm"}}, "spec": {"containers": [{"image": "vllm:1"}]}}
    assert template_hash(template) == template_hash({**template}) and len(template_hash(template)) == 10
    assert template_hash(template) != template_hash({**template, "spec": {"containers": [{"image": "vllm:2"}]}})


def test_the_emulated_vllm_text_reads_back_through_the_ticks_strict_parser():
    figures = serving_metrics.parse(vllm_metrics_text(5, 2, 40, 80.5, "platform-llm"))
    assert (figures.running, figures.waiting, figures.success_total, figures.e2e_seconds_sum) == (5, 2, 40, 80.5)
