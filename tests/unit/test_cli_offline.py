"""platformctl commands that work offline run without any settings (the registry's ``needs_context``)."""

from __future__ import annotations

import json

from shared import cli


def write_trace(path, requests: int = 60) -> str:
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    rows += [f"2023-11-16 18:{i // 60:02d}:{i % 60:02d}.0000000,500,50" for i in range(requests)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_scaling_simulate_runs_with_no_settings_at_all(tmp_path, monkeypatch, capsys):
    for name in ("PLATFORM_ENV", "PLATFORM_STORAGE_ACCOUNT", "PLATFORM_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    trace = write_trace(tmp_path / "trace.csv")
    code = cli.main(["--json", "scaling", "simulate", "--trace", trace, "--policy", "static"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)


def test_the_other_scaling_actions_still_need_the_settings(monkeypatch, capsys):
    for name in ("PLATFORM_ENV", "PLATFORM_STORAGE_ACCOUNT", "PLATFORM_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["scaling", "status"]) == 2  # configuration error, listed
    assert "PLATFORM_ENV" in capsys.readouterr().err
