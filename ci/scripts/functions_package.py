#!/usr/bin/env python3
"""Build the automation app's deployment zip once: the app files (minus what .funcignore excludes) and its
locked dependencies under .python_packages/lib/site-packages, where the Functions Python worker looks.

The same zip is deployed to every environment (no remote build), so what was tested is what runs.
Usage: python ci/scripts/functions_package.py --out functions-package.zip [--no-deps]
"""

from __future__ import annotations

import argparse
import fnmatch
import subprocess  # runs pip with a fixed argument list  # nosec B404
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALWAYS_EXCLUDED = ("ci", "ci/*", ".github", ".github/*", "docs", "docs/*", "*.pyc", "__pycache__", "*/__pycache__",
                   "*.zip", "*.sha256", ".secrets.baseline", ".sops.yaml", ".gitlab-ci.yml")


def ignore_patterns(root: Path = ROOT) -> list[str]:
    lines = (root / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [p.strip() for p in lines if p.strip() and not p.startswith("#")] + list(ALWAYS_EXCLUDED)


def excluded(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


def app_files(root: Path = ROOT) -> list[Path]:
    """Tracked app files, in a stable order (git ls-files: nothing local or ignored slips in)."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], check=True,
                            capture_output=True).stdout.decode().split("\0")
    patterns = ignore_patterns(root)
    return [root / rel for rel in sorted(listed) if rel and not excluded(rel, patterns) and (root / rel).is_file()]


def build(out: Path, *, with_deps: bool = True, root: Path = ROOT) -> int:
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in app_files(root):
            archive.write(path, path.relative_to(root).as_posix())
        if with_deps:
            target = Path(tmp) / "site-packages"
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--no-compile", "--target", str(target), "-r", str(root / "requirements.txt"),
                            "-c", str(root / "constraints.txt")], check=True)
            for path in sorted(target.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, ".python_packages/lib/site-packages/" + path.relative_to(target).as_posix())
        return len(archive.namelist())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="functions-package.zip")
    parser.add_argument("--no-deps", action="store_true", help="app files only (tests)")
    args = parser.parse_args()
    count = build(Path(args.out), with_deps=not args.no_deps)
    print(f"{args.out}: {count} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
