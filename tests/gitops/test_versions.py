"""Every pin is listed once in gitops/versions.yaml with its upstream support window, and none is past it."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from .conftest import ENVS, LAYERS, containers, find, name_of, pins, platform, pod_specs
from .test_policies import chart_of


def past_window(entries: list[dict], today: dt.date) -> list[str]:
    """Pins whose upstream support ended before `today` (a pure function of the list and the date)."""
    return [f"{e['name']} {e['version']}: supported until {e['supported_until']}"
            for e in entries if e["supported_until"] < today]


def every_pin() -> list[dict]:
    return [e for group in ("kubernetes", "charts", "images") for e in pins()[group]]


@pytest.mark.parametrize(
    ("case", "until", "today", "expired"),
    [("a day before the end", dt.date(2027, 1, 31), dt.date(2027, 1, 30), False),
     ("on the last supported day", dt.date(2027, 1, 31), dt.date(2027, 1, 31), False),
     ("the day after", dt.date(2027, 1, 31), dt.date(2027, 2, 1), True)],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_pin_expires_the_day_after_its_support_window(case, until, today, expired):
    entry = {"name": "x", "version": "1", "supported_until": until}
    assert bool(past_window([entry], today)) is expired


def test_no_pin_is_past_its_upstream_support_window():
    assert not past_window(every_pin(), dt.datetime.now(dt.UTC).date()), "upgrade these (gitops/versions.yaml)"


def test_every_pin_says_where_its_window_comes_from():
    for entry in every_pin():
        assert isinstance(entry["supported_until"], dt.date), entry["name"]
        assert entry["basis"] and isinstance(entry["confirmed"], bool), entry["name"]
    names = [(e["name"]) for e in every_pin()]
    assert len(names) == len(set(names)), "one entry per pin"


@pytest.mark.parametrize("env", ENVS)
def test_the_kubernetes_pin_is_the_one_every_environment_runs(env):
    (k8s,) = pins()["kubernetes"]
    assert platform(env)["cluster"]["kubernetes_version"] == k8s["version"]


@pytest.mark.parametrize("env", ENVS)
def test_every_chart_in_the_manifests_is_listed_with_its_version_and_source(objects, env):
    if any((layer, env) not in objects for layer in LAYERS):
        pytest.skip("an overlay of this environment does not build (see test_every_overlay_builds)")
    objs = [o for layer in LAYERS for o in objects[(layer, env)]]
    listed = {c["name"]: c for c in pins()["charts"]}
    used, problems = set(), []
    for hr in find(objs, "HelmRelease"):
        chart, version, source = chart_of(hr, objs)
        used.add(chart)
        entry = listed.get(chart)
        url = (source or {}).get("spec", {}).get("url", "").rstrip("/")
        if entry is None:
            problems.append(f"{name_of(hr)}: chart {chart} is not in gitops/versions.yaml")
        elif (entry["version"], entry["source"].rstrip("/")) != (version, url):
            problems.append(f"{name_of(hr)}: {chart} {version} from {url}, versions.yaml: "
                            f"{entry['version']} from {entry['source']}")
    assert not problems
    assert used == set(listed), f"listed but not used: {sorted(set(listed) - used)}"


@pytest.mark.parametrize("env", ENVS)
def test_every_app_image_is_listed_with_its_tag(objects, env):
    if ("apps", env) not in objects:
        pytest.skip("apps overlay does not build")
    listed = {i["name"]: i["version"] for i in pins()["images"]}
    registry = f"{platform(env)['acr']['name']}.azurecr.io/"
    seen = {}
    for o, spec in pod_specs(objects[("apps", env)]):
        for c in containers(spec):
            name, _, tag = c["image"].removeprefix(registry).rpartition(":")
            seen[name] = tag
            assert listed.get(name) == tag, f"{name_of(o)}: {c['image']} not in gitops/versions.yaml images"
    # Images of the other layers (`layer:`, e.g. the rate limit Redis next to Envoy Gateway) are pinned by tag in
    # their manifests and checked by test_images_outside_the_apps_layer_are_listed_with_their_tag.
    assert set(seen) == {i["name"] for i in pins()["images"] if i.get("layer", "apps") == "apps"}
    # A release version, the ROCm vLLM build's rocm<ROCm>_vllm_<vLLM>_<build date> (AMD tags no other way), or a
    # release version behind a build variant (text-embeddings-inference's cpu-<version>).
    assert all(re.fullmatch(r"(cpu-)?v?\d+\.\d+\.\d+([.-][0-9A-Za-z.-]+)?|rocm\d+\.\d+\.\d+_vllm_\d+\.\d+\.\d+_\d{8}",
                            t) for t in seen.values())


@pytest.mark.parametrize("env", ENVS)
def test_images_outside_the_apps_layer_are_listed_with_their_tag(objects, env):
    for entry in (i for i in pins()["images"] if i.get("layer", "apps") != "apps"):
        if (entry["layer"], env) not in objects:
            pytest.skip(f"{entry['layer']} overlay does not build")
        images = {c["image"] for _, spec in pod_specs(objects[(entry["layer"], env)]) for c in containers(spec)}
        assert any(i.endswith(f"{entry['name']}:{entry['version']}") for i in images), entry
