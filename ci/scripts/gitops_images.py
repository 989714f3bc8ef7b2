#!/usr/bin/env python3
"""List every container image the gitops tree pins, one per line, sorted: renders each overlay Flux applies with
`kubectl kustomize` and collects the images of pod templates (containers, init and ephemeral containers) and of
HelmRelease values (`image: {repository, tag|digest}` or `image: "ref"`), where charts take their image overrides.

Trivy scans each (ci/gitlab/security.yml, .github/workflows/security.yml).
Usage: python ci/scripts/gitops_images.py [--env ENV ...]   (needs kubectl with kustomize v5 and PyYAML)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess  # runs kubectl with a fixed argument list  # nosec B404
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENVS = ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")
LAYERS = ("infrastructure/controllers", "infrastructure/configs", "apps")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise SystemExit("kubectl not found on PATH (kustomize v5 inside kubectl is needed)")
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if isinstance(doc, dict)]


def _walk_pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if any(isinstance(node.get(k), list) for k in CONTAINER_LISTS) and "containers" in node:
            yield node
        for value in node.values():
            yield from _walk_pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_pod_specs(value)


def _values_images(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        image = node.get("image")
        if isinstance(image, str) and ("/" in image or ":" in image):
            yield image
        elif isinstance(image, dict) and isinstance(image.get("repository"), str):
            ref = image["repository"]
            if image.get("registry"):
                ref = f"{image['registry']}/{ref}"
            if image.get("digest"):
                yield f"{ref}@{image['digest']}"
            elif image.get("tag"):
                yield f"{ref}:{image['tag']}"
        for value in node.values():
            yield from _values_images(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values_images(value)


def images_of(objects: Iterable[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for obj in objects:
        if obj.get("kind") == "HelmRelease":
            found.update(_values_images(obj.get("spec", {}).get("values") or {}))
            continue
        for spec in _walk_pod_specs(obj.get("spec") or {}):
            for key in CONTAINER_LISTS:
                found.update(c["image"] for c in spec.get(key) or [] if isinstance(c, dict) and c.get("image"))
    # Flux postBuild substitutions (${VAR}) are resolved in the cluster, not here: such refs are not scannable.
    return {image for image in found if "${" not in image}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", choices=ENVS, help="default: every environment")
    args = parser.parse_args(argv)
    images: set[str] = set()
    for env in args.env or ENVS:
        for layer in LAYERS:
            images |= images_of(render(ROOT / "gitops" / layer / env))
    print("\n".join(sorted(images)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
