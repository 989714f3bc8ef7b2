#!/usr/bin/env python3
"""CHANGELOG.md from the commit log: one section per release tag (vX.Y.Z, newest first) plus "Unreleased".

Conventional commits (`type(scope)!: summary`, `BREAKING CHANGE:` in the body) are grouped by type; the
project's older `area: summary` subjects are listed under "Changed" with their area. Merge commits and fixups are
left out. `make changelog` rewrites CHANGELOG.md; `--check` exits 1 when it is out of date.

Usage: python ci/scripts/changelog.py [--write CHANGELOG.md | --check CHANGELOG.md]
"""

from __future__ import annotations

import argparse
import re
import subprocess  # runs git with a fixed argument list  # nosec B404
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
CONVENTIONAL = re.compile(r"^(?P<type>[a-z]+)(?:\((?P<scope>[^)]+)\))?(?P<bang>!)?: (?P<summary>.+)$")
AREA = re.compile(r"^(?P<area>[\w./ -]{2,40}): (?P<summary>.+)$")
SECTIONS = {  # conventional type -> heading, in the order they are printed
    "feat": "Added", "fix": "Fixed", "security": "Security", "perf": "Performance", "refactor": "Changed",
    "docs": "Documentation", "test": "Tests", "build": "Build and CI", "ci": "Build and CI", "chore": "Maintenance",
}
ORDER = ["Breaking changes", "Added", "Fixed", "Security", "Performance", "Changed", "Documentation", "Tests",
         "Build and CI", "Maintenance"]
SKIP = re.compile(r"^(Merge (branch|pull request|remote-tracking)|fixup!|squash!|lint$)")


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    body: str = ""
    tags: tuple[str, ...] = ()


def classify(commit: Commit) -> tuple[str, str] | None:
    """(section heading, line) for a commit, or None when it is left out."""
    if SKIP.match(commit.subject):
        return None
    short = commit.sha[:8]
    match = CONVENTIONAL.match(commit.subject)
    if match and match["type"] in SECTIONS:
        scope = f"**{match['scope']}**: " if match["scope"] else ""
        breaking = bool(match["bang"]) or "BREAKING CHANGE:" in commit.body
        return ("Breaking changes" if breaking else SECTIONS[match["type"]]), f"{scope}{match['summary']} ({short})"
    match = AREA.match(commit.subject)
    if match:
        return "Changed", f"**{match['area']}**: {match['summary']} ({short})"
    return "Changed", f"{commit.subject} ({short})"


def releases(commits: Sequence[Commit]) -> list[tuple[str, list[Commit]]]:
    """Commits newest first, split at release tags: [("Unreleased", [...]), ("v0.2.0", [...]), ...]."""
    groups: list[tuple[str, list[Commit]]] = [("Unreleased", [])]
    for commit in commits:
        tag = next((t for t in commit.tags if RELEASE_TAG.match(t)), None)
        if tag:
            groups.append((tag, []))
        groups[-1][1].append(commit)
    return [(name, items) for name, items in groups if items or name != "Unreleased"]


def render(commits: Sequence[Commit]) -> str:
    out = ["# Changelog", "",
           "Generated from the commit log by `make changelog` (ci/scripts/changelog.py): one section per release",
           "tag `vX.Y.Z`, newest first. Write commit subjects as conventional commits (`feat(scope): ...`,",
           "`fix: ...`, `!` or `BREAKING CHANGE:` for breaking changes); README \"Delivery\", Releases.", ""]
    for name, items in releases(commits):
        out += [f"## {name}", ""]
        grouped: dict[str, list[str]] = {}
        for commit in items:
            entry = classify(commit)
            if entry:
                grouped.setdefault(entry[0], []).append(entry[1])
        for heading in ORDER:
            if heading in grouped:
                out += [f"### {heading}", "", *(f"- {line}" for line in grouped[heading]), ""]
    return "\n".join(out).rstrip() + "\n"


def git_log(root: Path = ROOT) -> list[Commit]:
    fmt = "%H%x1f%s%x1f%b%x1f%D%x1e"
    out = subprocess.run(["git", "-C", str(root), "log", "--first-parent", f"--format={fmt}"], check=True,
                         capture_output=True, text=True).stdout
    commits = []
    for record in filter(None, (r.strip("\n") for r in out.split("\x1e"))):
        sha, subject, body, refs = [*record.split("\x1f"), "", "", ""][:4]
        tags = tuple(r.strip()[5:] for r in refs.split(",") if r.strip().startswith("tag: "))
        commits.append(Commit(sha, subject, body, tags))
    return commits


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE")
    group.add_argument("--check", metavar="FILE")
    args = parser.parse_args(list(argv) if argv is not None else None)
    text = render(git_log())
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    elif args.check:
        if Path(args.check).read_text(encoding="utf-8") != text:
            print(f"{args.check} is out of date: run make changelog", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
