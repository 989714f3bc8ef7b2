"""Releases: one app version everywhere, a semantic version for every module with the AKS versions it supports
(shown in infra/README.md), and the changelog built from the commit log (ci/scripts/changelog.py, pure parts)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import yaml

import shared

REPO = Path(__file__).resolve().parents[2]
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


def load_changelog():
    spec = importlib.util.spec_from_file_location("changelog", REPO / "ci" / "scripts" / "changelog.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("changelog", module)   # dataclasses look their module up there
    spec.loader.exec_module(sys.modules["changelog"])
    return sys.modules["changelog"]


def modules() -> dict:
    return yaml.safe_load((REPO / "infra" / "modules" / "versions.yaml").read_text())["modules"]


def test_the_app_has_one_semantic_version():
    version = (REPO / "VERSION").read_text().strip()
    assert SEMVER.fullmatch(version)
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"] == version
    assert shared.__version__ == version, "the /api/health version the deploy smoke test expects"


def test_every_module_has_a_semantic_version():
    dirs = {p.name for p in (REPO / "infra" / "modules").iterdir() if p.is_dir()}
    assert set(modules()) == dirs
    assert all(SEMVER.fullmatch(m["version"]) for m in modules().values())


def test_every_environment_runs_an_aks_version_its_modules_support():
    for env in ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth"):
        k8s = yaml.safe_load((REPO / "infra" / "envs" / env / "platform.yaml").read_text())["cluster"][
            "kubernetes_version"]
        for name, m in modules().items():
            assert m["kubernetes"] == "any" or k8s in m["kubernetes"], (env, name, k8s)


def test_the_compatibility_table_in_infra_readme_matches_the_versions_file():
    text = (REPO / "infra" / "README.md").read_text()
    rows = dict(re.findall(r"^\| ([\w-]+) \| (\d+\.\d+\.\d+ \| [^|]+?) \|$", text, flags=re.M))
    expected = {name: f"{m['version']} | " + (m["kubernetes"] if m["kubernetes"] == "any" else
                                             ", ".join(m["kubernetes"])) for name, m in modules().items()}
    assert rows == expected


def test_the_changelog_groups_conventional_commits_by_release():
    cl = load_changelog()
    commits = [
        cl.Commit("a" * 40, "feat(gate): refuse promotion on open findings"),
        cl.Commit("b" * 40, "Merge branch 'x' into main"),
        cl.Commit("c" * 40, "fix!: plan artifact name", tags=("v0.2.0",)),
        cl.Commit("d" * 40, "docs: runbooks", body="BREAKING CHANGE: nothing really"),
        cl.Commit("e" * 40, "Scaling: one binary search", tags=("v0.1.0", "other")),
    ]
    text = cl.render(commits)
    assert text.index("## Unreleased") < text.index("## v0.2.0") < text.index("## v0.1.0")
    unreleased = text.split("## v0.2.0")[0]
    assert "### Added\n\n- **gate**: refuse promotion on open findings (aaaaaaaa)" in unreleased
    assert "Merge branch" not in text
    v020 = text.split("## v0.2.0")[1].split("## v0.1.0")[0]
    assert v020.count("### Breaking changes") == 1 and "plan artifact name" in v020 and "runbooks" in v020
    assert "- **Scaling**: one binary search (eeeeeeee)" in text.split("## v0.1.0")[1]
