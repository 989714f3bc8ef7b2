"""``make run``: Azurite + the sandbox + the app on 127.0.0.1:7071, until Ctrl-C stops them all.

Writes the settings it used to ``.local/sandbox.settings.json`` (local.settings.json format) so that
``platformctl --settings .local/sandbox.settings.json ...`` in another terminal drives the same sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from shared import logs
from shared.local.azurite import Azurite, free_port
from shared.platform import APP_ROOT, ENVIRONMENTS, load_environment

BANNER = """
Platform Core is running locally on the sandbox ({env}).
  app        http://127.0.0.1:{port}   (functions: {functions})
  storage    Azurite on 127.0.0.1:{queue_port} (queues), data in {workdir}
  sandbox    {sandbox}

Try:
  curl -s http://127.0.0.1:{port}/api/health
  curl -s -X POST http://127.0.0.1:{port}/admin/functions/state_housekeeping -d '{{}}'
  .venv/bin/platformctl --settings {settings} health
  .venv/bin/platformctl --settings {settings} --json health

Drift (README "Drift and GitOps changes"):
  curl -sk -X POST {arm}/_sandbox/drift -d '{{"pool":"h100","maxCount":8}}'
  .venv/bin/platformctl --settings {settings} drift --open-mr --apply
  curl -s -X POST {gitlab}/_sandbox/push -d '{{"files":{{"gitops/clusters/{env}/apps.yaml":"# touched\\n"}}}}'

Ctrl-C stops everything this command started.
"""


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

        host = LocalHost(function_app.app, port=args.port, storage=context.storage)
        host.start()
        sandbox.gitlab.webhook_url = f"http://127.0.0.1:{host.port}/api/gitlab/webhook"  # pushes reach the app
        print(BANNER.format(
            env=args.env, port=host.port, functions=", ".join(sorted(host.functions)), queue_port=ports["queue"],
            workdir=workdir / "azurite", settings=os.path.relpath(settings_file),
            sandbox=", ".join(f"{n} {e.base_url}" for n, e in sandbox.emulators.items()),
            arm=sandbox.arm.base_url, gitlab=sandbox.gitlab.base_url,
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
