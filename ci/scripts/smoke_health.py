#!/usr/bin/env python3
"""Smoke test after a deploy: GET the anonymous /api/health until it answers 200 {"status": "ok"} (and the
expected version, when given), or fail after --timeout seconds. Standard library only (runs in any CI image).

Usage: python ci/scripts/smoke_health.py https://HOST/api/health [--expect-version 0.2.0] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def check(url: str, expect_version: str | None, timeout: float = 10.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked in main  # nosec B310
            body = json.loads(response.read().decode() or "{}")
            status = response.status
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if status != 200 or body.get("status") != "ok":
        return False, f"HTTP {status} {body}"
    if expect_version and body.get("version") != expect_version:
        return False, f"version {body.get('version')!r}, expected {expect_version!r} (old code still serving?)"
    return True, f"HTTP 200 {body}"


def main(argv: list[str] | None = None, *, sleep=time.sleep, clock=time.monotonic) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--expect-version")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args(argv)
    if not args.url.startswith(("https://", "http://")):
        parser.error(f"{args.url}: an http(s) URL is expected")
    deadline = clock() + args.timeout
    while True:
        ok, detail = check(args.url, args.expect_version)
        print(f"{args.url}: {detail}")
        if ok:
            return 0
        if clock() >= deadline:
            print(f"smoke test failed: {args.url} not healthy after {args.timeout:.0f}s", file=sys.stderr)
            return 1
        sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
