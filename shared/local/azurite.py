"""Start and stop Azurite (the npm Storage emulator) as one child process on free loopback ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from shared.platform import APP_ROOT

# Azurite's fixed development account. Its key is published in Microsoft's documentation and only
# opens the local emulator: it is not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Azurite:
    def __init__(self, location: Path | str, *, blob_port: int = 0, queue_port: int = 0, table_port: int = 0,
                 binary: Path | str | None = None) -> None:
        self.location = Path(location)
        self.ports = {
            "blob": blob_port or free_port(),
            "queue": queue_port or free_port(),
            "table": table_port or free_port(),
        }
        self.binary = Path(binary) if binary else APP_ROOT / "node_modules" / ".bin" / "azurite"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        p = self.ports
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{p['blob']}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{p['queue']}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{p['table']}/{ACCOUNT};"
        )

    def start(self, timeout: float = 30.0) -> Azurite:
        if not self.binary.exists():
            node = shutil.which("node")
            raise RuntimeError(
                f"Azurite is not installed at {self.binary}: run `make node` (npm ci)"
                + ("" if node else "; Node.js is missing too")
            )
        self.location.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # one PID owns Azurite so we can stop it (no npx wrapper)
            [str(self.binary), "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl",
             "--location", str(self.location),
             "--blobHost", "127.0.0.1", "--blobPort", str(self.ports["blob"]),
             "--queueHost", "127.0.0.1", "--queuePort", str(self.ports["queue"]),
             "--tableHost", "127.0.0.1", "--tablePort", str(self.ports["table"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        pending = set(self.ports.values())
        while pending:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"Azurite exited with {self.process.returncode}: {err[-2000:]}")
            for port in list(pending):
                with socket.socket() as s:
                    s.settimeout(0.2)
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        pending.discard(port)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not listen on {sorted(pending)} within {timeout}s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
