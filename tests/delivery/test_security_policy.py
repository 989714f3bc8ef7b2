"""The offline security scans' configuration keeps its promises (README "Delivery", security policy): the semgrep
ruleset is vendored (no rule download), every suppression carries a reason, and everything detect-secrets
tolerates through the baseline is explained. The scanners themselves run in `make security` (own venv)."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SECURITY = REPO / "ci" / "security"
SAST_PATHS = ("function_app.py", "functions", "shared", "ci", "bench")


def tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", *paths], check=True, capture_output=True,
                         text=True).stdout
    return [p for p in out.split("\0") if p]


def test_the_semgrep_ruleset_is_vendored_and_complete():
    rules = yaml.safe_load((SECURITY / "semgrep-rules.yml").read_text())["rules"]
    assert len(rules) >= 8
    for rule in rules:
        assert rule["id"].startswith("platform-") and rule["message"] and rule["languages"] == ["python"]
        assert rule["severity"] in ("ERROR", "WARNING")


def test_pipelines_and_make_run_semgrep_only_with_the_vendored_rules():
    texts = [(REPO / p).read_text() for p in (".gitlab-ci.yml", "ci/gitlab/security.yml", "ci/delivery.mk",
                                               ".github/workflows/security.yml")]
    configs = [c for t in texts for c in re.findall(r"semgrep scan[^\n]*?--config[ =](\S+)", t)]
    assert configs and set(configs) == {"ci/security/semgrep-rules.yml"}


NOSEC = re.compile(r"#\s*nosec\b")
NOSEMGREP = re.compile(r"#\s*nosemgrep\b")


def test_every_inline_suppression_gives_a_reason():
    missing = []
    for path in tracked(*SAST_PATHS):
        if not path.endswith(".py"):
            continue
        for number, line in enumerate((REPO / path).read_text().splitlines(), 1):
            if NOSEC.search(line):
                # "... # <reason>  # nosec Bnnn" or "# nosec Bnnn - <reason>"
                comment = line[line.index("#"):]
                words = re.sub(r"nosec\s*B?\d*|noqa:\s*[A-Z]+\d+|[#,:-]", " ", comment).split()
                if len(words) < 2:
                    missing.append(f"{path}:{number}")
            if NOSEMGREP.search(line) and not re.search(r"nosemgrep:\s*[\w.-]+\s+-\s+\w+", line):
                missing.append(f"{path}:{number}")
    assert not missing, f"suppressions without a reason: {missing}"


def test_every_path_excluded_from_a_semgrep_rule_says_why():
    lines = (SECURITY / "semgrep-rules.yml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("exclude:"):
            assert "reason" in lines[i - 1].lower() or "reason" in lines[i - 2].lower(), line


def test_every_file_in_the_secrets_baseline_has_a_reason():
    baseline = json.loads((REPO / ".secrets.baseline").read_text())
    reasons = yaml.safe_load((SECURITY / "secrets-reasons.yaml").read_text())
    assert all(isinstance(r, str) and len(r.split()) >= 3 for r in reasons.values())
    unexplained = [f for f in baseline["results"] if not any(fnmatch.fnmatch(f, glob) for glob in reasons)]
    assert not unexplained, f"add a reason to ci/security/secrets-reasons.yaml for: {unexplained}"


def test_the_secrets_baseline_excludes_only_vendored_schemas_and_the_npm_lock():
    baseline = json.loads((REPO / ".secrets.baseline").read_text())
    excluded = [f["pattern"] for f in baseline["filters_used"] if f["path"].endswith("should_exclude_file")]
    assert excluded == [["^gitops/schemas/", "^package-lock\\.json$"]]
