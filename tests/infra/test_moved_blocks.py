"""Every `moved` block of the modules and environments moves a resource that really existed to one that exists now,
so that an apply after a refactoring renames state instead of destroying and creating the resource.

`to` is checked against the configuration (the resource is declared, and its key is one of its for_each keys or its
index fits its count); `from` against the configuration (no longer declared, same type) and against git history
(the module declared it, with the instance key shape the address uses). A checkout without that history (a
shallow clone) skips the history part."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from infra_helpers import ENVS_DIR, MODULES_DIR, REPO, for_each_instances, load_hcl, parse_hcl, resources, tf_files

# `${type.name}`, `${type.name[0]}` or `${type.name["key"]}`, as python-hcl2 renders a moved block's address.
ADDRESS = re.compile(r'\$\{(?P<type>\w+)\.(?P<name>\w+)(?:\[(?:(?P<index>\d+)|"(?P<key>[^"]+)")\])?\}')


def _configurations() -> list[Path]:
    return sorted(p for p in [*MODULES_DIR.iterdir(), *ENVS_DIR.iterdir()] if p.is_dir())


def _moved() -> list[tuple[Path, dict]]:
    return [(directory, block) for directory in _configurations() for path in tf_files(directory)
            for block in load_hcl(path).get("moved", [])]


MOVED = _moved()


def _address(text: str) -> re.Match:
    match = ADDRESS.fullmatch(text)
    assert match, f"not a resource instance address this test reads: {text}"
    return match


def _shape(body: dict) -> str:
    return "for_each" if "for_each" in body else "count" if "count" in body else "single"


def _address_shape(address: re.Match) -> str:
    return "for_each" if address["key"] is not None else "count" if address["index"] is not None else "single"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)


@cache
def _history_available() -> bool:
    return shutil.which("git") is not None and _git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"


@cache
def _former_body(directory: Path, rtype: str, name: str) -> dict | None:
    """The resource's body in the newest commit of the module's history that declares it, or None."""
    declaration = f'resource "{rtype}" "{name}"'
    where = directory.relative_to(REPO).as_posix()
    commits = _git("log", "--format=%H", "-S", declaration, "--", where).stdout.split()
    for commit in commits:
        for revision in (commit, f"{commit}^"):
            found = _git("grep", "-l", "-F", declaration, revision, "--", where)
            for hit in found.stdout.split():
                text = _git("show", hit).stdout  # hit is "<revision>:<path>"
                for entry in parse_hcl(text).get("resource", []):
                    if name in entry.get(rtype, {}):
                        return entry[rtype][name]
    return None


def test_there_are_moved_blocks_to_check():
    assert len(MOVED) >= 5


@pytest.mark.parametrize(("directory", "block"), MOVED,
                         ids=[f"{d.name}:{_address(b['from'])[0][2:-1]}" for d, b in MOVED])
def test_each_move_goes_to_a_declared_instance_of_the_same_type(directory, block):
    source, target = _address(block["from"]), _address(block["to"])
    assert source["type"] == target["type"], "a moved block cannot change the resource type"
    declared = resources(directory)
    body = declared.get((target["type"], target["name"]))
    assert body is not None, f"{block['to']} is not declared in {directory.name}"
    assert _shape(body) == _address_shape(target), f"{block['to']} does not fit its resource's {_shape(body)}"
    if target["key"] is not None:
        keys, _ = for_each_instances(directory, body)
        assert target["key"] in keys, f"{target['key']} is not a key of {target['name']}'s for_each"
    assert (source["type"], source["name"]) not in declared, f"{block['from']} is still declared"


@pytest.mark.parametrize(("directory", "block"), MOVED,
                         ids=[f"{d.name}:{_address(b['from'])[0][2:-1]}" for d, b in MOVED])
def test_each_move_comes_from_a_resource_the_module_once_declared_with_that_instance_shape(directory, block):
    if not _history_available():
        pytest.skip("not a git checkout: the former addresses cannot be read")
    source = _address(block["from"])
    former = _former_body(directory, source["type"], source["name"])
    if former is None and _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("shallow clone: the commit that declared the former resource is not here")
    assert former is not None, f"{directory.name} never declared {source['type']}.{source['name']}"
    assert _shape(former) == _address_shape(source), f"{block['from']} did not fit the former {_shape(former)}"
