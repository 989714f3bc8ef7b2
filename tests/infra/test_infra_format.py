"""`terraform fmt -check -recursive`: formatting is canonical, so diffs show only real changes."""

import subprocess

from infra_helpers import INFRA, terraform_binary, terraform_env


def test_terraform_files_are_formatted_canonically():
    terraform = terraform_binary()
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-list=true", str(INFRA)],
        capture_output=True,
        text=True,
        timeout=60,
        env=terraform_env(),
        check=False,
    )
    assert result.returncode == 0, (
        f"not formatted (run `terraform fmt -recursive infra`):\n{result.stdout}{result.stderr}"
    )
