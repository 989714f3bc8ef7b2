"""Drift: the pure diff at scale, and the GitLab webhook's answer time in process against Azurite.

1. ``diff`` of 10,000 desired pools against 10,000 live ones (every 10th drifted) plus 10,000 Flux
   objects and 10,000 nodes: target under 1 s.
2. ``POST /api/gitlab/webhook`` through the function itself (token check, parse, de-duplication claim,
   enqueue, answer) against Azurite, N requests: target p99 under 50 ms.

    .venv/bin/python bench/drift.py [--objects 10000] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.services import drift as d  # noqa: E402 - after the path is set

PREFIX = "platform.example.com"
HEAD = "c" * 40


def estate(n: int) -> tuple[d.DesiredState, d.ActualState]:
    pools, live, flux, nodes = [], [], [], []
    for i in range(n):
        labels = ((f"{PREFIX}/gpu-pool", f"p{i}"), (f"{PREFIX}/workload", "inference"))
        spec = d.PoolSpec(f"p{i}", "Standard_NC40ads_H100_v5", 0, 4, ("gpu_pools", f"name=p{i}"),
                          taints=(d.GPU_TAINTS["nvidia"],), labels=labels, zones=("1", "2", "3"),
                          automation_moves_min=True)
        pools.append(spec)
        actual = d.ActualPool(spec.name, spec.vm_size, 0, 8 if i % 10 == 0 else 4, True, spec.taints, labels,
                              None, spec.zones)
        live.append(actual)
        revision = f"main@sha1:{HEAD if i % 10 else 'd' * 40}"
        flux.append(d.FluxObject("Kustomization", "flux-system", f"k{i}", ready="True", revision=revision,
                                 source="GitRepository/flux-system/flux-system"))
        nodes.append(d.NodeView(f"node-{i}", spec.name, (*labels, (d.AGENTPOOL_LABEL, spec.name)), spec.taints))
    flux.append(d.FluxObject("GitRepository", "flux-system", "flux-system", ready="True", revision=f"main@sha1:{HEAD}"))
    desired = d.DesiredState("dev-uaenorth", "1.32", "patch", tuple(pools), PREFIX, "main", HEAD)
    return desired, d.ActualState("1.32.6", "patch", tuple(live), tuple(flux), tuple(nodes))


def bench_diff(n: int, runs: int = 5) -> dict[str, float]:
    desired, actual = estate(n)
    rules = d.parse_ignore_rules({"ignore": [{"resource": "nodepool/p1*", "field": "zones", "reason": "bench"}]})
    times, found = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        found = len(d.diff(desired, actual, ignore=rules))
        times.append(time.perf_counter() - start)
    return {"objects": n, "findings": found, "median_s": statistics.median(times), "max_s": max(times)}


def bench_webhook(requests: int) -> dict[str, float]:
    import azure.functions as func

    import function_app
    from shared.context import Context, set_context
    from shared.credentials import StaticTokenCredential
    from shared.local.azurite import Azurite
    from shared.platform import load_environment
    from shared.settings import Settings

    secret = "bench-webhook-secret-" + uuid.uuid4().hex
    handler = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}[
        "gitlab_webhook"]
    body = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "after": HEAD, "total_commits_count": 1,
                       "project": {"path_with_namespace": "platform/platform-core", "default_branch": "main"},
                       "commits": [{"id": HEAD, "modified": ["gitops/clusters/dev-uaenorth/apps.yaml"],
                                    "added": [], "removed": []}]}).encode()
    with tempfile.TemporaryDirectory() as workdir, Azurite(Path(workdir)) as azurite:
        settings = Settings.from_env({"PLATFORM_ENV": "dev-uaenorth", "GITLAB_WEBHOOK_SECRET": secret,
                                      "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                      "AZURE_CREDENTIAL": "static"})
        set_context(Context(settings=settings, platform=load_environment("dev-uaenorth"),
                            credential=StaticTokenCredential()))

        def post() -> float:
            request = func.HttpRequest("POST", "http://localhost/api/gitlab/webhook", body=body, headers={
                "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": str(uuid.uuid4())})
            start = time.perf_counter()
            response = handler(request)
            elapsed = time.perf_counter() - start
            assert response.status_code == 202, response.get_body()
            return elapsed

        for _ in range(10):  # first use creates the table and the queue
            post()
        times = sorted(post() for _ in range(requests))
        set_context(None)
    return {"requests": requests, "p50_ms": times[len(times) // 2] * 1000,
            "p99_ms": times[max(0, int(len(times) * 0.99) - 1)] * 1000, "max_ms": times[-1] * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    diff = bench_diff(args.objects)
    print(f"drift diff: {diff['objects']} desired vs {diff['objects']} actual pools (+ as many Flux objects and "
          f"nodes): {diff['findings']} findings, median {diff['median_s'] * 1000:.0f} ms, "
          f"max {diff['max_s'] * 1000:.0f} ms (target < 1000 ms)")
    hook = bench_webhook(args.requests)
    print(f"gitlab webhook in process against Azurite: {hook['requests']} requests, p50 {hook['p50_ms']:.1f} ms, "
          f"p99 {hook['p99_ms']:.1f} ms, max {hook['max_ms']:.1f} ms (target p99 < 50 ms)")
    ok = diff["max_s"] < 1.0 and hook["p99_ms"] < 50
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
