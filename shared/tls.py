"""Extra CA certificates the app trusts on top of the public roots: ``TLS_EXTRA_CA_PEM``.

In Azure the app calls hosts behind the cluster's *internal* Gateway (OpenCost), whose certificate is issued by
cert-manager's internal CA. external-secrets pushes that CA's certificate (never its key) to Key Vault and the app
reads it through a Key Vault reference (README "Cost"). ``TLS_CA_BUNDLE`` cannot carry it: that is a file that
*replaces* the trust store (the sandbox CA), while Cloudflare, GitLab, Slack and ARM must keep the public roots.

So the extra PEM is *added*: once per process, the base bundle (``TLS_CA_BUNDLE`` when set, else certifi's, the
roots requests and the Azure SDKs use) plus the extra certificates are written to a private temporary file, and
that file is every adapter's ``HttpOptions.ca_bundle``.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import tempfile
import threading

#: What Terraform writes to the Key Vault secret before external-secrets has pushed the CA (infra/modules/platform
#: internal_ca.tf; cross-checked by tests/infra): the app treats it as "no extra CA yet", not as a broken setting.
PLACEHOLDER = "not-yet-pushed"

_BEGIN = "-----BEGIN CERTIFICATE-----"

_lock = threading.Lock()
#: (base bundle path, sha256 of the extra PEM) -> merged bundle path: one file per process and content.
_bundles: dict[tuple[str, str], str] = {}


def parse_extra_ca_pem(text: str) -> str:
    """The normalised PEM of the CA certificates in ``text``; ValueError saying what is wrong, never echoing it.

    Every block must be a parseable X.509 certificate; a private key is refused (only the certificate is public).
    """
    from cryptography import x509

    if "PRIVATE KEY-----" in text:
        raise ValueError("holds a private key; set only the CA certificate (PEM CERTIFICATE blocks)")
    if _BEGIN not in text:
        raise ValueError(f"expected PEM CERTIFICATE blocks, got text starting {text[:12]!r}")
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise ValueError("a PEM CERTIFICATE block does not parse as an X.509 certificate") from None
    if len(certificates) != text.count(_BEGIN):
        raise ValueError("a PEM CERTIFICATE block does not parse as an X.509 certificate")
    from cryptography.hazmat.primitives.serialization import Encoding

    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


def default_bundle() -> str:
    """The roots requests and the Azure SDKs trust when given no bundle."""
    import certifi

    return certifi.where()


def merged_bundle(base: str | None, extra_pem: str) -> str:
    """Path of a private file holding ``base`` (default: certifi's bundle) followed by ``extra_pem``.

    Written once per process for a given base and PEM (a new CA after a rotation arrives with a restart, as
    every app setting does); removed at exit.
    """
    base = base or default_bundle()
    key = (base, hashlib.sha256(extra_pem.encode()).hexdigest())
    with _lock:
        path = _bundles.get(key)
        if path is not None and os.path.isfile(path):
            return path
        with open(base, encoding="ascii", errors="replace") as f:
            roots = f.read()
        fd, path = tempfile.mkstemp(prefix="platform-ca-", suffix=".pem")  # mode 0600
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(roots if roots.endswith("\n") else roots + "\n")
            f.write("# TLS_EXTRA_CA_PEM\n")
            f.write(extra_pem)
        _bundles[key] = path
        atexit.register(_remove, path)
        return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
