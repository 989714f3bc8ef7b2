"""checkov (pinned, own virtualenv, offline) over infra/: no failed check, and every skip has a reason."""

import json
import re
import subprocess
from functools import cache

import pytest
from infra_helpers import CHECKOV, INFRA, all_tf_files

# One checkov run serves every test here (cached); over ten modules on a shared 2-core machine it can take
# several minutes, more than the suite's default per-test timeout.
pytestmark = pytest.mark.timeout(600)

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
MIN_REASON_LENGTH = 20


@cache
def checkov_report() -> list[dict]:
    if not CHECKOV.exists():
        pytest.skip(
            f"checkov is not installed in {CHECKOV.parent.parent.name}: run `make infra-check` "
            "(it builds .venv-checkov from infra/checkov-constraints.txt)"
        )
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(INFRA),
            "--framework",
            "terraform",
            "secrets",
            "--skip-download",
            "--compact",
            "--output",
            "json",
            "--skip-path",
            r"\.terraform",
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    # checkov exits 1 when a check fails; anything else is a crash.
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def _checks(kind: str) -> list[dict]:
    return [check for report in checkov_report() for check in report["results"].get(kind, [])]


def _source_skips() -> list[tuple[str, str, str]]:
    skips = []
    for path in [*all_tf_files(), *INFRA.rglob("*.yaml")]:
        for match in SKIP_COMMENT.finditer(path.read_text()):
            skips.append((str(path.relative_to(INFRA)), match.group(1), (match.group(2) or "").strip()))
    return skips


def test_checkov_finds_no_failed_checks():
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in _checks("failed_checks")
    ]
    assert not failed, "checkov failures (fix them, or skip inline with a reason):\n" + "\n".join(failed)


def test_checkov_parses_every_file():
    for report in checkov_report():
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["passed"] + report["summary"]["skipped"] > 0


def test_every_checkov_skip_in_the_report_carries_a_reason():
    for check in _checks("skipped_checks"):
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) >= MIN_REASON_LENGTH, (
            f"{check['check_id']} on {check['resource']} is skipped without a reason"
        )


def test_every_inline_checkov_skip_has_a_written_reason():
    skips = _source_skips()
    assert skips
    for path, check_id, reason in skips:
        assert len(reason) >= MIN_REASON_LENGTH, f"{path}: skip of {check_id} needs a reason of a sentence"


def test_every_inline_checkov_skip_is_still_needed():
    used = {(c["file_path"].lstrip("/"), c["check_id"]) for c in _checks("skipped_checks")}
    stale = [(path, check_id) for path, check_id, _ in _source_skips() if (path, check_id) not in used]
    assert not stale, f"skips checkov no longer applies (remove them): {stale}"


def test_no_check_is_skipped_globally():
    # Skips live next to the resource they concern, never in a config file that silences a check everywhere.
    for name in (".checkov.yaml", ".checkov.yml"):
        assert not (INFRA / name).exists()
        assert not (INFRA.parent / name).exists()
