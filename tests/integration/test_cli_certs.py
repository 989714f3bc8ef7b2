"""platformctl certs against Azurite and the sandbox: status, rotate (dry run, forced), cleanup."""

import json

import pytest

from shared.cli import main

pytestmark = pytest.mark.integration
NAME = "origin-dev-platform"


@pytest.fixture(scope="module")
def sandbox(azurite, tmp_path_factory):
    from shared.local.sandbox import Sandbox
    from shared.platform import load_environment

    sandbox = Sandbox(load_environment("dev-uaenorth"), tmp_path_factory.mktemp("sandbox"))
    values = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
              "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", **sandbox.start()}
    path = tmp_path_factory.mktemp("settings") / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    yield path, sandbox
    sandbox.stop()


def cli(path, capsys, *argv):
    code = main(["--settings", str(path), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_certs_status_rotate_and_cleanup_in_order(sandbox, capsys):
    path, box = sandbox
    code, out, _ = cli(path, capsys, "--json", "certs", "status")
    [row] = json.loads(out)
    assert code == 0 and row["certificate"] == NAME and row["decision"] == "renew"
    assert row["reason"] == "InsideRenewBefore" and row["days_left"] < 30 and "Origin" in row["issuer"]

    code, out, _ = cli(path, capsys, "certs", "rotate", NAME, "--dry-run")
    assert code == 0 and "dry run" in out and len(box.keyvault.versions(NAME)) == 1

    code, out, _ = cli(path, capsys, "certs", "rotate", NAME)
    assert code == 0 and "rotated Cloudflare certificate" in out and len(box.keyvault.versions(NAME)) == 2

    code, out, _ = cli(path, capsys, "certs", "rotate", NAME)
    assert code == 0 and "up to date" in out and len(box.keyvault.versions(NAME)) == 2
    code, out, _ = cli(path, capsys, "--json", "certs", "rotate", NAME, "--force")
    assert code == 0 and json.loads(out)["decision"]["reason"] == "Forced" and len(box.keyvault.versions(NAME)) == 3

    code, out, _ = cli(path, capsys, "certs", "status")
    assert code == 0 and "up to date" not in out and "[UpToDate]" in out and "pending revocation" in out
    assert "grace period until" in out

    code, out, _ = cli(path, capsys, "certs", "cleanup")
    assert code == 0 and out.startswith("dry run") and "waiting" in out
    assert not any(c.get("revoked_at") for c in box.cloudflare.certificates.values())


def test_rotating_an_unmanaged_certificate_is_bad_usage(sandbox, capsys):
    path, _ = sandbox
    code, _, err = cli(path, capsys, "certs", "rotate", "not-ours")
    assert code == 2 and "not managed" in err


def test_rotate_needs_a_name(sandbox, capsys):
    path, _ = sandbox
    code, _, err = cli(path, capsys, "certs", "rotate")
    assert code == 2 and "NAME" in err
