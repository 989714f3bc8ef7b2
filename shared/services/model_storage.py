"""Model weights: checked against their publisher's checksums before vLLM may load them (README "AI stack",
"Model storage").

A model reaches vLLM this way: its files and a ``SHA256SUMS`` manifest (``sha256sum`` format: ``<hex>  <path>``
per line, as Hugging Face's LFS pointers and most model publishers give the hashes) are copied into the
``models`` container of the platform storage account under ``<model>/<revision>/`` (``azcopy`` with the
operator's Entra identity; infra/README.md "Model weights"); ``platformctl models verify DIR`` checks a local
copy before the upload, and the vLLM Deployments only point ``--model`` at a revision whose manifest has
been verified (the git change that does so says which). A mismatch, a missing or an unlisted file fails:
vLLM would otherwise load whatever the container holds.

Pure: ``parse_manifest`` and ``compare`` take text and digests; ``verify_directory`` streams each file once
(1 MiB blocks, so 100 GB of safetensors never sit in memory).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import BadInputError

MANIFEST = "SHA256SUMS"
_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<path>.+)$")
BLOCK = 1 << 20


def parse_manifest(text: str) -> dict[str, str]:
    """``sha256sum`` output -> {relative path: lower-case hex digest}. Blank lines and ``#`` comments pass."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line.rstrip("\r"))
        if not m:
            raise BadInputError(f"{MANIFEST} line {number}: expected '<sha256>  <path>'")
        path = m.group("path").removeprefix("./")
        if path.startswith("/") or ".." in Path(path).parts:
            raise BadInputError(f"{MANIFEST} line {number}: {path!r} leaves the model directory")
        if path in out:
            raise BadInputError(f"{MANIFEST} line {number}: {path} listed twice")
        out[path] = m.group("digest").lower()
    if not out:
        raise BadInputError(f"{MANIFEST} lists no file")
    return out


@dataclass(frozen=True)
class Verification:
    ok_files: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unlisted: tuple[str, ...] = ()
    digests: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.ok_files) and not (self.mismatched or self.missing or self.unlisted)

    def summary(self) -> str:
        if self.ok:
            return f"ok: {len(self.ok_files)} file(s) match {MANIFEST}"
        parts = [f"{label}: {', '.join(files)}" for label, files in
                 (("checksum mismatch", self.mismatched), ("missing", self.missing),
                  ("not in the manifest", self.unlisted)) if files]
        return "FAILED: " + "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": len(self.ok_files), "mismatched": list(self.mismatched),
                "missing": list(self.missing), "unlisted": list(self.unlisted)}


def compare(expected: Mapping[str, str], actual: Mapping[str, str]) -> Verification:
    """Manifest digests against the digests of the files present (both by relative path)."""
    ok = tuple(sorted(p for p in expected if actual.get(p) == expected[p]))
    mismatched = tuple(sorted(p for p in expected if p in actual and actual[p] != expected[p]))
    missing = tuple(sorted(p for p in expected if p not in actual))
    unlisted = tuple(sorted(p for p in actual if p not in expected))
    return Verification(ok, mismatched, missing, unlisted, dict(actual))


def sha256_of(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _blocks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            yield block


def verify_directory(directory: Path, manifest: Path) -> Verification:
    """Every file under ``directory`` (but the manifest) hashed and compared with ``manifest``."""
    if not manifest.is_file():
        raise BadInputError(f"{manifest}: no such manifest (write one with `sha256sum` where the weights come from)")
    expected = parse_manifest(manifest.read_text(encoding="utf-8"))
    actual = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if path.resolve() == manifest.resolve() or rel.startswith("."):
            continue
        actual[rel] = sha256_of(_blocks(path))
    return compare(expected, actual)


# -- upload: verified weights into the models container ----------------------------------------------------------

MODELS_CONTAINER = "models"  # infra/modules/platform local.models_container; gitops PV model-serving-models
VERIFIED = "VERIFIED.json"
_SAFE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class PullReport:
    prefix: str
    uploaded: tuple[str, ...]
    skipped: tuple[str, ...]
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "uploaded": list(self.uploaded), "skipped": list(self.skipped),
                "dry_run": self.dry_run}


def container_client(ctx: Any) -> Any:
    """The platform storage account's ``models`` container, with the app's settings (Azurite locally)."""
    from azure.storage.blob import ContainerClient

    s = ctx.settings
    if s.storage_connection_string:
        return ContainerClient.from_connection_string(s.storage_connection_string, MODELS_CONTAINER)
    return ContainerClient(f"https://{s.storage_account}.blob.core.windows.net", MODELS_CONTAINER,
                           credential=ctx.azure_credential)


def pull(container: Any, directory: Path, *, model: str, revision: str, now: str,
         dry_run: bool = False) -> PullReport:
    """Verify ``directory`` against its SHA256SUMS, then copy it to ``<model>/<revision>/`` in ``container``.

    Nothing is uploaded unless every file matches. Each blob carries its digest as metadata ``sha256``; a blob
    already there with the same digest is skipped, so a pull interrupted half way is resumed by running it again.
    ``VERIFIED.json`` (files and digests, when) is written last: its presence says the revision is complete and
    checked, which is what the git change pointing vLLM's ``--model`` at the revision relies on."""
    for name, value in (("model", model), ("revision", revision)):
        if not _SAFE.match(value):
            raise BadInputError(f"--{name} {value!r}: lower-case letters, digits, '.', '_' and '-' only")
    manifest = directory / MANIFEST
    report = verify_directory(directory, manifest)
    if not report.ok:
        raise BadInputError(f"{directory}: {report.summary()}; nothing uploaded")
    prefix = f"{model}/{revision}/"
    from azure.core.exceptions import ResourceNotFoundError

    uploaded, skipped = [], []
    for rel, digest in sorted(report.digests.items()):
        blob = container.get_blob_client(prefix + rel)
        try:
            existing = blob.get_blob_properties().metadata.get("sha256")
        except ResourceNotFoundError:
            existing = None
        if existing == digest:
            skipped.append(rel)
            continue
        uploaded.append(rel)
        if not dry_run:
            with (directory / rel).open("rb") as fh:
                blob.upload_blob(fh, overwrite=True, metadata={"sha256": digest})
    if not dry_run:
        container.get_blob_client(prefix + MANIFEST).upload_blob(manifest.read_bytes(), overwrite=True)
        marker = {"model": model, "revision": revision, "verified_at": now,
                  "files": dict(sorted(report.digests.items()))}
        container.get_blob_client(prefix + VERIFIED).upload_blob(json.dumps(marker, indent=1).encode(),
                                                                  overwrite=True)
    return PullReport(prefix, tuple(uploaded), tuple(skipped), dry_run)
