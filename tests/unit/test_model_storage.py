"""Model weights are checked against their SHA256SUMS before vLLM may load them (shared/services/model_storage.py)."""

from __future__ import annotations

import hashlib

import pytest

from shared.errors import BadInputError
from shared.services import model_storage as ms


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FILES = {"config.json": b'{"model_type": "llama"}', "model-00001-of-00002.safetensors": b"\x00" * 4096,
         "tokenizer/tokenizer.json": b"{}"}


def write(tmp_path, files=FILES, manifest=None):
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    lines = manifest if manifest is not None else [f"{digest(d)}  {rel}" for rel, d in FILES.items()]
    (tmp_path / ms.MANIFEST).write_text("\n".join(lines) + "\n")
    return tmp_path


def test_a_model_whose_files_match_their_manifest_passes(tmp_path):
    report = ms.verify_directory(write(tmp_path), tmp_path / ms.MANIFEST)
    assert report.ok and len(report.ok_files) == 3 and report.summary().startswith("ok")


CASES = {
    "a changed byte is a mismatch": ({**FILES, "config.json": b'{"model_type": "llamb"}'}, "mismatched",
                                     ["config.json"]),
    "a missing shard is missing": ({k: v for k, v in FILES.items() if "safetensors" not in k}, "missing",
                                   ["model-00001-of-00002.safetensors"]),
    "a file the publisher did not list is refused": ({**FILES, "extra.bin": b"x"}, "unlisted", ["extra.bin"]),
}


@pytest.mark.parametrize(("files", "field", "expected"), CASES.values(), ids=CASES.keys())
def test_any_difference_from_the_manifest_fails(tmp_path, files, field, expected):
    report = ms.verify_directory(write(tmp_path, files), tmp_path / ms.MANIFEST)
    assert not report.ok and list(getattr(report, field)) == expected and "FAILED" in report.summary()


MANIFESTS = {
    "a line that is not sha256sum output": ["not a checksum line"],
    "a path leaving the directory": [f"{'0' * 64}  ../etc/passwd"],
    "the same path twice": [f"{'0' * 64}  a", f"{'1' * 64}  a"],
    "no file at all": ["# only a comment"],
}


@pytest.mark.parametrize("lines", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_a_bad_manifest_is_bad_input(lines):
    with pytest.raises(BadInputError):
        ms.parse_manifest("\n".join(lines))


def test_binary_mode_markers_and_dot_slash_paths_are_read_as_sha256sum_writes_them():
    assert ms.parse_manifest(f"{'A' * 64} *./weights.bin\n") == {"weights.bin": "a" * 64}


def test_platformctl_models_verify_runs_offline_and_exits_non_zero_on_a_mismatch(tmp_path):
    import argparse

    from shared import cli

    spec = cli.COMMANDS["models"]
    args = argparse.Namespace(models_action="verify", directory=str(tmp_path), manifest=None)
    assert not spec.needs_context(args)  # no settings needed: ctx is None
    write(tmp_path)
    assert spec.run(None, args)[0] == 0
    (tmp_path / "config.json").write_bytes(b"tampered")
    code, data, text = spec.run(None, args)
    assert (code, data["mismatched"]) == (1, ["config.json"]) and text.startswith("FAILED")
