"""``platformctl models pull`` into Azurite's blob endpoint: only verified weights go up, resumable, marked."""

from __future__ import annotations

import argparse
import hashlib
import json

import pytest
from _fixtures_saas import sandbox_context

from shared import cli
from shared.errors import BadInputError
from shared.services import model_storage as ms

pytestmark = pytest.mark.integration


def weights(tmp_path):
    files = {"config.json": b"{}", "model.safetensors": b"\x01" * 2048}
    for rel, data in files.items():
        (tmp_path / rel).write_bytes(data)
    (tmp_path / ms.MANIFEST).write_text("".join(f"{hashlib.sha256(d).hexdigest()}  {r}\n" for r, d in files.items()))
    return tmp_path


def pull(ctx, directory, **kw):
    args = argparse.Namespace(models_action="pull", directory=str(directory), model="platform-llm",
                              revision="r1", json=False, **kw)
    return cli.COMMANDS["models"].run(ctx, args)


def test_a_verified_model_is_copied_once_and_marked_and_a_tampered_one_is_not(tmp_path, azurite, dev_platform):
    ctx = sandbox_context(dev_platform, PLATFORM_STORAGE_CONNECTION_STRING=azurite.connection_string)
    container = ms.container_client(ctx)
    if not container.exists():
        container.create_container()
    directory = weights(tmp_path)

    code, planned, _ = pull(ctx, directory, dry_run=True)
    assert code == 0 and planned["dry_run"] and not container.get_blob_client("platform-llm/r1/VERIFIED.json").exists()
    code, first, text = pull(ctx, directory)
    assert sorted(first["uploaded"]) == ["config.json", "model.safetensors"] and "/models/platform-llm/r1/" in text
    marker = json.loads(container.download_blob("platform-llm/r1/VERIFIED.json").readall())
    assert set(marker["files"]) == {"config.json", "model.safetensors"}
    assert container.get_blob_client("platform-llm/r1/model.safetensors").get_blob_properties().metadata[
        "sha256"] == marker["files"]["model.safetensors"]
    assert pull(ctx, directory)[1]["skipped"] == ["config.json", "model.safetensors"]  # resumable, idempotent

    (directory / "model.safetensors").write_bytes(b"\x02" * 2048)
    with pytest.raises(BadInputError, match=r"checksum mismatch: model\.safetensors"):
        pull(ctx, directory)
