"""``make run``: Azurite + the sandbox + the app on 127.0.0.1:7071, until Ctrl-C stops them all.

Writes the settings it used to ``.local/sandbox.settings.json`` (local.settings.json format) so that
``platformctl --settings .local/sandbox.settings.json ...`` in another terminal drives the same sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from shared import logs
from shared.errors import PlatformError
from shared.local.azurite import Azurite, free_port
from shared.platform import APP_ROOT, ENVIRONMENTS, load_environment

BANNER = """
Platform Core is running locally on the sandbox ({env}).
  app        http://127.0.0.1:{port}   (functions: {functions})
  storage    Azurite on 127.0.0.1:{queue_port} (queues), data in {workdir}
  sandbox    {sandbox}

Try:
  curl -s http://127.0.0.1:{port}/api/health
  curl -s -H 'x-functions-key: {function_key}' 'http://127.0.0.1:{port}/api/health/details?probe=true'
  curl -s -X POST http://127.0.0.1:{port}/admin/functions/state_housekeeping -d '{{}}'
  .venv/bin/platformctl --settings {settings} health
  .venv/bin/platformctl --settings {settings} --json health

Origin certificate rotation, from event to revocation (Key Vault emits, the app rotates, external-secrets
is simulated after {sync_delay:g}s, the superseded certificate is revoked after the grace period):
  curl -sk -X POST {keyvault}/_sandbox/events -d '{{"name": "{certificate}", "type": "CertificateNearExpiry"}}'
  .venv/bin/platformctl --settings {settings} certs status
  .venv/bin/platformctl --settings {settings} certs cleanup --apply   # after grace_period_minutes

GPU scaling (README "GPU scaling"): queue requests and the pool wakes; the emulated Deployment controller starts
a vLLM pod on each new node once it is Ready ({node_ready:g}s after it registers; Pending until then) and the tick
reads in flight from them ("in flight N (vllm)"); an override below the size drains: the cordoned nodes' pods go
first, then exactly their machines (the timer ticks every 15 s, or now):
  .venv/bin/python -m shared.local.enqueue --settings {settings} {gpu_queue} 12
  .venv/bin/platformctl --settings {settings} scaling override {gpu_pool} 2 --for 1h   # a size to drain from
  curl -s -X POST http://127.0.0.1:{port}/admin/functions/gpu_scaling -d '{{}}'       # tick now
  .venv/bin/platformctl --settings {settings} scaling status     # nodes, their serving pods, in flight (vllm)
  .venv/bin/platformctl --settings {settings} scaling override {gpu_pool} 1 --for 1h   # then tick twice: cordon, delete
  .venv/bin/platformctl --settings {settings} scaling decide --pool {gpu_pool}

Cost (README "Cost"; the sandbox's OpenCost emulator, priced from the platform's price file):
  .venv/bin/platformctl --settings {settings} cost --since 7d
  .venv/bin/platformctl --settings {settings} cost --by label:model --json

Drift (README "Drift and GitOps changes"):
  curl -sk -X POST {arm}/_sandbox/drift -d '{{"pool":"h100","maxCount":8}}'
  .venv/bin/platformctl --settings {settings} drift --open-mr --apply
  curl -s -X POST {gitlab}/_sandbox/push -d '{{"files":{{"gitops/clusters/{env}/apps.yaml":"# touched\\n"}}}}'

Compliance (README "Compliance scans"): the cluster, Kyverno's reports and the rendered gitops overlays, with history:
  .venv/bin/platformctl --settings {settings} scan --sarif .local/scan.sarif
ChatOps (README "ChatOps"): signed as Slack (or --teams) would; answers come back through the chat emulator.
The sandbox's access file asks a second operator to approve every change, so dev shows the approval too:
  .venv/bin/platformctl --settings {settings} chat "status {env}"
  .venv/bin/platformctl --settings {settings} chat "pause autoscaling {env}" --as alice
  .venv/bin/platformctl --settings {settings} chat --click ID --as bob      # ID: printed by the line above
  .venv/bin/platformctl --settings {settings} chat "resume autoscaling {env}" --teams --as bob
  .venv/bin/platformctl --settings {settings} audit --target chatops/{env}
  .venv/bin/platformctl --settings {settings} audit verify chatops/{env}

MCP server (README "MCP server"): any streamable-HTTP MCP client at http://127.0.0.1:{port}/api/mcp with headers
  x-functions-key: {function_key} and X-MS-CLIENT-PRINCIPAL-ID: 00000000-0000-4000-8000-0000000a11ce (alice)

Ctrl-C stops everything this command started.
"""
#: Seconds the simulated external-secrets takes to copy a new Key Vault version into the cluster.
SYNC_DELAY = 5.0


def wire_certificates(sandbox, context, app_url: str, sync_delay: float = SYNC_DELAY) -> None:
    """Key Vault's certificate events go to the app; new versions reach the Kubernetes TLS secrets after
    ``sync_delay`` as external-secrets would; the emulated Origin roots are known to the rotation."""
    platform = sandbox.platform
    types = {"origin-rsa": "rsa", "origin-ecc": "ecc"}
    context.overrides["origin_roots"] = [sandbox.cloudflare.roots.pem(types[c.request_type])
                                         for c in platform.certificates if c.request_type in types]
    specs = {c.name.lower(): c for c in platform.certificates}

    def sync(name: str, value: str) -> None:
        for ref in getattr(specs.get(name.lower()), "synced_secrets", ()):
            sandbox.kubernetes.sync_tls_secret(ref, value)

    for spec in platform.certificates:  # the secrets as the cluster holds them at start
        value = sandbox.keyvault.secret_value(spec.name)
        if value:
            sync(spec.name, value)

    def later(name: str, value: str) -> None:
        timer = threading.Timer(sync_delay, sync, args=(name, value))
        timer.daemon = True
        timer.start()

    sandbox.keyvault.on_new_version.append(later)
    sandbox.keyvault.subscriber_url = f"{app_url}/runtime/webhooks/eventgrid?functionName=keyvault_certificate_events"


#: Seconds a node the sandbox adds stays NotReady (a real GPU node takes minutes: VM, driver, image, model).
NODE_READY_SECONDS = 3.0
#: Seconds a serving pod's share of the queue is cached: the tick reads every pod within one second.
SERVING_LOAD_CACHE_SECONDS = 1.0


def wire_gpu_serving(sandbox, context, cache_seconds: float = SERVING_LOAD_CACHE_SECONDS) -> None:
    """The emulated vLLM pods of each pool's serving Deployment report the pool's queue as their load: the queue's
    messages split over the Running pods up to their slots, as if each pod had taken that many requests (nothing
    completes: the sandbox has no model). So the tick reads in flight from vLLM (``in_flight_source: vllm``)."""
    import time

    def depth_of(queue: str):
        cached: list[float] = [0.0, -1.0]  # (value, when)

        def depth() -> int:
            if time.monotonic() - cached[1] > cache_seconds:
                try:
                    cached[0] = float(context.storage.queue_depth(queue))
                except PlatformError:  # Azurite unreachable: the pods report nothing running
                    cached[0] = 0.0
                cached[1] = time.monotonic()
            return int(cached[0])

        return depth

    for pool in sandbox.platform.gpu_pools:
        if pool.serving_deployment and "/" in pool.serving_deployment:
            namespace, name = pool.serving_deployment.split("/", 1)
            sandbox.kubernetes.set_serving_load(namespace, name, depth_of(pool.inference_queue))


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--env", default="dev-uaenorth", choices=ENVIRONMENTS)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    parser.add_argument("--workdir", default=str(APP_ROOT / ".local"))
    args = parser.parse_args(argv)

    logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
    if not _port_free(args.port):
        print(f"port {args.port} is in use (another `make run` or `func start`?): stop it or pass PORT=...",
              file=sys.stderr)
        return 2
    workdir = Path(args.workdir)
    platform = load_environment(args.env)

    from shared.local.sandbox import Sandbox

    # Azurite's usual ports when free, so Storage Explorer finds it; otherwise any free ports.
    usual = {"blob": 10000, "queue": 10001, "table": 10002}
    ports = {kind: (port if _port_free(port) else free_port()) for kind, port in usual.items()}
    azurite = Azurite(workdir / "azurite", blob_port=ports["blob"], queue_port=ports["queue"],
                      table_port=ports["table"])
    sandbox = Sandbox(platform, workdir / "sandbox")
    host = None
    try:
        azurite.start()
        settings = {
            "PLATFORM_ENV": args.env,
            "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "AzureWebJobsStorage": azurite.connection_string,
            "SDK_MAX_RETRIES": "1",
            "HTTP_TIMEOUT_SECONDS": "10",
            "GPU_SCALING_SCHEDULE": "*/15 * * * * *",  # functions/gpu_scaling.py
            "COMPLIANCE_SCHEDULE": "0 30 4 * * *",  # functions/compliance.py
            **sandbox.start(),
        }
        settings_file = workdir / "sandbox.settings.json"
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}, indent=2))
        settings_file.chmod(0o600)
        os.environ.update(settings)

        from shared.context import get_context, set_context
        from shared.local.host import LocalHost

        set_context(None)
        context = get_context()  # validates the settings now, not on the first request
        import function_app

        # A fresh function key per run: function-level routes need it, as in Azure (printed below).
        function_key = os.environ.get("LOCAL_FUNCTION_KEY") or secrets.token_urlsafe(24)
        host = LocalHost(function_app.app, port=args.port, storage=context.storage, function_key=function_key)
        wire_certificates(sandbox, context, host.start())
        wire_gpu_serving(sandbox, context)
        sandbox.kubernetes.node_ready_seconds = NODE_READY_SECONDS
        # platformctl chat finds the app and the chat emulator here (neither is an app setting).
        settings.update({"CHATOPS_APP_URL": f"http://127.0.0.1:{host.port}", "CHAT_SANDBOX_URL": sandbox.chat.base_url})
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}, indent=2))
        sandbox.gitlab.webhook_url = f"http://127.0.0.1:{host.port}/api/gitlab/webhook"  # pushes reach the app
        print(BANNER.format(
            env=args.env, port=host.port, functions=", ".join(sorted(host.functions)), queue_port=ports["queue"],
            workdir=workdir / "azurite", settings=os.path.relpath(settings_file), function_key=function_key,
            sandbox=", ".join(f"{n} {e.base_url}" for n, e in sandbox.emulators.items()),
            keyvault=sandbox.keyvault.base_url, sync_delay=SYNC_DELAY,
            certificate=platform.certificates[0].name if platform.certificates else "NAME",
            arm=sandbox.arm.base_url, gitlab=sandbox.gitlab.base_url,
            gpu_pool=platform.gpu_pools[0].name if platform.gpu_pools else "POOL",
            gpu_queue=platform.gpu_pools[0].inference_queue if platform.gpu_pools else "QUEUE",
            node_ready=NODE_READY_SECONDS,
        ), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        print("\nstopping...", file=sys.stderr)
        if host is not None:
            host.stop()
        sandbox.stop()
        azurite.stop()
        print("stopped: app, sandbox and Azurite", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
