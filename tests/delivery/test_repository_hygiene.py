"""What a clone gets: no local virtualenv or node_modules (a committed symlink to one dangles on every other
machine, and the bootstrap then fails to create the real one), and no other symlink than the documented ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: infra/envs/<env>/{main,providers}.tf link to the one root in infra/root (infra/README.md)
ALLOWED_LINKS = {f"infra/envs/{env}-uaenorth/{name}.tf"
                 for env in ("dev", "stg", "prd") for name in ("main", "providers")}


def tracked() -> list[tuple[str, str]]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-s"], capture_output=True, text=True, check=True)
    return [(line.split()[0], line.split("\t", 1)[1]) for line in out.stdout.splitlines()]


def test_no_virtualenv_or_node_modules_is_tracked():
    bad = [path for _, path in tracked()
           if path.split("/")[0] in (".venv", "node_modules") or path.split("/")[0].startswith(".venv-")]
    assert not bad, f"tracked local environments (git rm --cached them): {bad[:5]}"


def test_the_only_tracked_symlinks_are_the_environment_roots():
    links = {path for mode, path in tracked() if mode == "120000"}
    assert links <= ALLOWED_LINKS, sorted(links - ALLOWED_LINKS)
