"""GPU scaling configuration: platform.yaml's gpu_pools fields and the app settings of the timer."""

from __future__ import annotations

import copy

import pytest
import yaml

from shared.errors import ConfigError
from shared.platform import DEFAULT_CONFIG_DIR, parse_environment
from shared.services.scaling import tick


def raw_dev() -> dict:
    return yaml.safe_load((DEFAULT_CONFIG_DIR / "dev-uaenorth" / "platform.yaml").read_text())


def test_pools_declare_a_fallback_their_serving_deployment_and_policy_overrides():
    env = parse_environment(raw_dev())
    h100 = env.gpu_pool("h100")
    assert h100.fallback_pool == "mi300x" and h100.serving_deployment == "model-serving/vllm-h100"
    params = tick.parameters_for(h100)
    assert (params.min_count, params.max_count, params.slots_per_node) == (h100.min_count, h100.max_count, 8)
    assert params.time_to_ready_seconds == dict(h100.scaling)["time_to_ready_seconds"]


@pytest.mark.parametrize(("change", "problem"), [
    ({"fallback_pool": "h100"}, "fallback_pool 'h100' must name another pool"),
    ({"fallback_pool": "a100"}, "fallback_pool 'a100' must name another pool"),
    ({"scaling": {"nope": 1}}, "unknown scaling parameters: nope"),
    ({"scaling": {"max_step_up": 0}}, "max_step_up must be at least 1"),
    ({"scaling": {"max_count": 3}}, "come from the pool itself"),
    ({"scaling": {"safety": "high"}}, "must be numbers"),
])
def test_bad_scaling_fields_are_configuration_problems(change, problem):
    raw = copy.deepcopy(raw_dev())
    raw["gpu_pools"][0].update(change)
    with pytest.raises(ConfigError) as caught:
        parse_environment(raw)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_the_kill_switch_dry_run_and_drain_timeout_come_from_app_settings():
    assert tick.switches_from({}) == tick.Switches(enabled=True, dry_run=False, drain_timeout_seconds=600)
    assert tick.switches_from({"GPU_SCALING_ENABLED": "false", "GPU_SCALING_DRY_RUN": "yes",
                               "GPU_SCALING_DRAIN_TIMEOUT_SECONDS": "120"}) == tick.Switches(False, True, 120)
    with pytest.raises(ConfigError) as caught:
        tick.switches_from({"GPU_SCALING_ENABLED": "maybe", "GPU_SCALING_DRAIN_TIMEOUT_SECONDS": "-1"})
    assert len(caught.value.problems) == 2
