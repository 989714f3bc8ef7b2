"""platformctl against Azurite and the sandbox: readable by default, --json on demand, clear failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox_settings(azurite, tmp_path_factory):
    from shared.local.sandbox import Sandbox
    from shared.platform import load_environment

    sandbox = Sandbox(load_environment("dev-uaenorth"), tmp_path_factory.mktemp("sandbox"))
    values = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
              "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "3", **sandbox.start()}
    path = tmp_path_factory.mktemp("settings") / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    yield path, sandbox
    sandbox.stop()


def run_cli(*argv, env=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "AZURE_", "CLOUDFLARE_"))}
    return subprocess.run([sys.executable, "-m", "shared.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=60)


def test_health_is_readable_by_default_and_exits_zero_when_all_is_reachable(sandbox_settings, capsys):
    path, _ = sandbox_settings
    assert main(["--settings", str(path), "health"]) == 0
    out = capsys.readouterr().out
    assert "environment dev-uaenorth" in out and "6 of 6 dependencies healthy" in out


def test_health_exits_one_and_names_the_unhealthy_dependency_when_one_fails(sandbox_settings, capsys):
    path, sandbox = sandbox_settings
    sandbox.gitlab.inject(status=503, path="/api/v4/projects", times=None)
    try:
        assert main(["--settings", str(path), "--json", "health"]) == 1
    finally:
        sandbox.gitlab.clear_faults()
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "degraded"
    gitlab = next(p for p in report["probes"] if p["name"] == "gitlab")
    assert gitlab["reachable"] is False and "unreachable" in gitlab["detail"]


def test_health_json_contains_no_secret_values(sandbox_settings, capsys):
    path, _ = sandbox_settings
    main(["--settings", str(path), "--json", "health"])
    out = capsys.readouterr().out
    for secret in ("sandbox-cloudflare-token", "sandbox-gitlab-token", "AccountKey="):
        assert secret not in out


def test_the_audit_trail_is_shown_by_target_and_time(sandbox_settings, capsys):
    from shared.context import Context

    path, _ = sandbox_settings
    from shared.cli import load_settings_file

    ctx = Context.from_env(load_settings_file(str(path)))
    ctx.state.audit(actor="gpu-scaler", action="scale", target="nodepool/dev-uaenorth/h100-cli",
                    reason="QueueDepth", outcome="succeeded", inputs={"count": 2})
    assert main(["--settings", str(path), "audit", "--target", "nodepool/dev-uaenorth/h100-cli", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "gpu-scaler" in out and "[QueueDepth]" in out
    assert main(["--settings", str(path), "--json", "audit", "--target", "nobody"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("case", "argv", "env", "code", "says"),
    [
        ("missing settings exit 2 listing every problem", ["health"], {}, 2, "PLATFORM_ENV: required"),
        ("an unknown environment is refused by the parser", ["--env", "prod", "health"], {}, 2, "invalid choice"),
        ("a missing settings file is named", ["--settings", "/nope.json", "health"], {}, 2, "/nope.json not found"),
        ("a bad --since is bad input", ["audit", "--since", "yesterday"],
         {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
         2, "--since: expected"),
        ("no command prints usage", [], {}, 2, "usage: platformctl"),
    ],
)
def test_failures_give_a_clear_message_and_a_non_zero_exit(case, argv, env, code, says):
    result = run_cli(*argv, env=env)
    assert result.returncode == code, (case, result.stdout, result.stderr)
    assert says in result.stdout + result.stderr, case


# -- --dry-run (issue 7, item 15) ------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--dry-run", "health"], ["health", "--dry-run"], ["audit", "--dry-run"]])
def test_dry_run_on_a_read_only_command_is_refused_with_exit_two_and_says_why(argv):
    result = run_cli(*argv, env={"PLATFORM_ENV": "dev-uaenorth",
                                 "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "read-only" in result.stderr and "--dry-run" in result.stderr


def test_a_mutating_command_receives_dry_run_and_plans_without_changing(sandbox_settings, capsys):
    from shared import cli
    from shared.services.actuation import mutate

    path, _ = sandbox_settings
    ran = []

    @cli.command("cordon-test", "a mutating command, as future ones declare themselves", mutating=True)
    def cordon(ctx, args):
        mutate(ctx, actor="platformctl", action="cordon", target="node/dev-uaenorth/cli-dry-run", reason="Manual",
               inputs={}, change=lambda: ran.append(1), dry_run=args.dry_run)
        return 0, {"dry_run": args.dry_run}, "planned" if args.dry_run else "done"

    try:
        assert main(["--settings", str(path), "--json", "cordon-test", "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out) == {"dry_run": True}
        assert ran == []
        assert main(["--settings", str(path), "audit", "--target", "node/dev-uaenorth/cli-dry-run"]) == 0
        assert "planned" in capsys.readouterr().out
    finally:
        cli.COMMANDS.pop("cordon-test")
