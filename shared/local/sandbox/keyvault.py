"""A Key Vault emulator for the certificates data plane, as azure-keyvault-certificates calls it.

What it reproduces, because our rotation code depends on it:

- the **challenge flow**: a request without a token gets 401 + ``WWW-Authenticate: Bearer
  authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"``;
  the client then asks its credential for ``https://vault.azure.net/.default`` and retries;
- **PEM import** (private key in PKCS#8 + certificate chain) parsed with cryptography, each import a
  new version with its own tags; Key Vault's ``{"error": {"code": "BadParameter", ...}}`` on bad input;
- ``nextLink`` paging for certificate and version lists, ``secrets/<name>`` serving the PEM bundle that
  external-secrets reads, and a record of the ``CertificateNewVersionCreated`` Event Grid events a
  real vault would publish (recorded only; the sandbox decides whether to deliver them).

Seed: one certificate per ``platform.certificates`` entry, issued by a local stand-in for the
Cloudflare Origin CA, already inside its renewal window so that the rotation path runs at once.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.local.sandbox.base import Emulator, HttpError, Request, Response, bearer_token, iso, utc_now
from shared.platform import CertificateSpec, PlatformEnvironment

PEM_CONTENT_TYPE = "application/x-pem-file"
PKCS12_CONTENT_TYPE = "application/x-pkcs12"
_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
#: The api-versions this emulator serves: what the pinned azure-keyvault-certificates (4.12.0) sends. Any other
#: is refused as the service refuses an unknown one, so that an SDK upgrade shows up here first
#: (tests/integration/test_emulators.py checks that the installed SDK sends one of these).
ACCEPTED_API_VERSIONS = ("2026-04-01",)
_PRIVATE_KEY_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----")
_MAX_TAGS = 15
_MAX_PAGE = 25
_BAD_PEM = ("The specified PEM X.509 certificate content is in an unexpected format. Please check if "
            "certificate is in valid PEM format.")
_RECOVERY = {"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _epoch(t: dt.datetime) -> int:
    return int(t.timestamp())


# ---------------------------------------------------------------------------------------------
# A stand-in for the Cloudflare Origin CA (also usable by a Cloudflare emulator)


class OriginTestCA:
    """Issues origin certificates shaped like Cloudflare's: its own CA, SANs = hostnames, RSA or ECC."""

    def __init__(self) -> None:
        self._cas: dict[str, tuple[Any, Any]] = {}  # request_type -> (key, cert), made on first use

    @staticmethod
    def _new_key(request_type: str) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if request_type == "origin-rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    def ca(self, request_type: str) -> tuple[Any, Any]:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        if request_type not in self._cas:
            key = self._new_key(request_type)
            unit = ("CloudFlare Origin SSL ECC Certificate Authority" if request_type == "origin-ecc"
                    else "CloudFlare Origin SSL Certificate Authority")
            name = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc. (sandbox)"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            ])
            now = utc_now()
            cert = (
                x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=3650))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256())
            )
            self._cas[request_type] = (key, cert)
        return self._cas[request_type]

    def issue(
        self, hostnames: tuple[str, ...] | list[str], *, request_type: str = "origin-ecc",
        not_before: dt.datetime, not_after: dt.datetime,
    ) -> tuple[bytes, bytes, int]:
        """Return (PKCS#8 key PEM, leaf + CA chain PEM, serial) for these hostnames."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_key, ca_cert = self.ca(request_type)
        key = self._new_key(request_type)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CloudFlare Origin CA"),
                x509.NameAttribute(NameOID.COMMON_NAME, "CloudFlare Origin Certificate"),
            ]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return key_pem, cert.public_bytes(pem) + ca_cert.public_bytes(pem), cert.serial_number


# ---------------------------------------------------------------------------------------------
# Stored state


@dataclass
class _Version:
    version: str
    der: bytes
    secret_value: str  # what secrets/<name> returns: PEM bundle, or base64 PFX
    content_type: str
    not_before: dt.datetime
    expires: dt.datetime
    created: dt.datetime
    updated: dt.datetime
    enabled: bool
    tags: dict[str, str]
    subject: str
    sans: list[str]
    key_type: str  # "EC" | "RSA"
    key_detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Certificate:
    name: str
    versions: list[_Version] = field(default_factory=list)  # oldest first
    policy_content_type: str = PEM_CONTENT_TYPE
    policy_created: dt.datetime = field(default_factory=utc_now)


class KeyVaultEmulator(Emulator):
    name = "keyvault"
    tls = True  # the SDK refuses anything but https

    def __init__(
        self, platform: PlatformEnvironment, *, page_size: int = _MAX_PAGE, seed: bool = True,
    ) -> None:
        self.platform = platform
        #: Items per page when the client does not ask for fewer (Key Vault's own maximum is 25).
        self.page_size = page_size
        #: Tokens accepted; None = any non-empty bearer token.
        self.accepted_tokens: set[str] | None = None
        #: Event Grid events a real vault would publish (Event Grid schema), oldest first.
        self.events: list[dict[str, Any]] = []
        self.api_versions: set[str] = set()
        self.origin_ca = OriginTestCA()
        self._certs: dict[str, _Certificate] = {}
        self._seed = seed
        #: Where certificate events are POSTed as Event Grid would (the app's
        #: ``/runtime/webhooks/eventgrid?functionName=keyvault_certificate_events``); None: recorded only.
        self.subscriber_url: str | None = None
        #: Called with (name, secret value) after each import: the sandbox's stand-in for external-secrets.
        self.on_new_version: list[Any] = []
        #: (status, event type) of every forwarded delivery, oldest first.
        self.deliveries: list[tuple[int, str]] = []
        self._outbox: Any = None
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Back to the seeded vault (certificates, events, faults, request log), keeping the port."""
        with self.lock:
            self._certs.clear()
            self.events.clear()
            self.accepted_tokens = None
            self.faults.clear()
            self.requests.clear()
            if self._seed:
                for spec in self.platform.certificates:
                    self.seed_certificate(spec)

    # -- seed and test helpers ---------------------------------------------------------------

    def seed_certificate(
        self, spec: CertificateSpec, *, expires_in_days: float | None = None,
    ) -> dict[str, Any]:
        """Store a version of ``spec`` issued by the test Origin CA, inside its renewal window by default.

        No event is recorded: a real vault only notifies about versions created after the Event Grid
        subscription exists, and seeds predate it.
        """
        days_left = expires_in_days if expires_in_days is not None else max(1, spec.renew_before_days - 5)
        expires = utc_now().replace(microsecond=0) + dt.timedelta(days=days_left)
        not_before = expires - dt.timedelta(days=spec.validity_days or 90)
        key_pem, chain_pem, serial = self.origin_ca.issue(
            spec.hostnames, request_type=spec.request_type or "origin-ecc",
            not_before=not_before, not_after=expires,
        )
        tags = {
            "issuer": "cloudflare-origin-ca",
            "cloudflare-id": str(secrets.randbelow(10**48)),
            "serial": format(serial, "x"),
            "hostnames": ",".join(spec.hostnames),
            "request-type": spec.request_type,
            "zone": spec.zone,
        }
        with self.lock:
            stored = self._store(spec.name, key_pem + chain_pem, PEM_CONTENT_TYPE, None, tags, enabled=True)
            return self._bundle(spec.name, stored)

    def settings_env(self) -> dict[str, str]:
        return {"KEYVAULT_URL": self.base_url}

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name`` as Key Vault renders it (CertificateBundle JSON), oldest first."""
        with self.lock:
            cert = self._certs.get(name.lower())
            return [self._bundle(cert.name, v) for v in cert.versions] if cert else []

    def latest(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            cert = self._certs.get(name.lower())
            return self._bundle(cert.name, cert.versions[-1]) if cert and cert.versions else None

    def secret_value(self, name: str) -> str | None:
        """What external-secrets would read from ``secrets/<name>`` (latest version)."""
        with self.lock:
            cert = self._certs.get(name.lower())
            return cert.versions[-1].secret_value if cert and cert.versions else None

    # -- framework hooks ----------------------------------------------------------------------

    def routes(self) -> None:
        n = r"(?P<name>[^/]+)"
        self.route("GET", r"/certificates/?", self.list_certificates)
        self.route("POST", rf"/certificates/{n}/import", self.import_certificate)
        self.route("GET", rf"/certificates/{n}/versions", self.list_versions)
        self.route("GET", rf"/certificates/{n}/policy", self.get_policy)
        self.route("GET", rf"/certificates/{n}(?:/(?P<version>[^/]*))?", self.get_certificate)
        self.route("PATCH", rf"/certificates/{n}(?:/(?P<version>[^/]*))?", self.update_certificate)
        self.route("GET", rf"/secrets/{n}(?:/(?P<version>[^/]*))?", self.get_secret)

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"error": {"code": code, "message": message}}

    def dispatch(self, request: Request) -> Response:
        # Key Vault answers an unauthenticated request with the challenge before anything else
        # (including injected faults): the SDK's first request never carries a token.
        if not request.path.startswith("/_sandbox/") and not bearer_token(request):
            response = self._challenge("AKV10000: Request is missing a Bearer or PoP token.")
        else:
            response = super().dispatch(request)
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        response.headers.setdefault("x-ms-keyvault-service-version", "1.9.2712.1")
        response.headers.setdefault("x-ms-keyvault-region", self.platform.location)
        return response

    def authenticate(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if not token:
            return self._challenge("AKV10000: Request is missing a Bearer or PoP token.")
        if self.accepted_tokens is not None and token not in self.accepted_tokens:
            return self._challenge("AKV10032: Invalid issuer. Expected one of https://sts.windows.net/"
                                   f"{self.platform.tenant_id}/.")
        return None

    def _challenge(self, message: str) -> Response:
        header = (f'Bearer authorization="https://login.microsoftonline.com/{self.platform.tenant_id}", '
                  'resource="https://vault.azure.net"')
        return Response(401, self.error_body(401, "Unauthorized", message), {"WWW-Authenticate": header})

    # -- request helpers ----------------------------------------------------------------------

    def _check(self, request: Request) -> None:
        version = request.query.get("api-version")
        if not version:
            raise HttpError(400, "BadParameter", "The api-version query parameter is missing.")
        if version not in ACCEPTED_API_VERSIONS:
            raise HttpError(400, "BadParameter", f"The specified version ({version}) is not recognized. "
                                                 f"Consider using the latest supported version "
                                                 f"({ACCEPTED_API_VERSIONS[0]}).")
        self.api_versions.add(version)
        name = request.params.get("name")
        if name is not None and not _NAME.match(name):
            raise HttpError(400, "BadParameter",
                            f"The request URI contains an invalid name: {name}. Names may contain only "
                            "alphanumeric characters and dashes, up to 127 characters.")

    def _find(
        self, name: str, version: str | None = None, kind: str = "certificate",
    ) -> tuple[_Certificate, _Version]:
        cert = self._certs.get(name.lower())
        what = f"{name}/{version}" if version else name
        code = "CertificateNotFound" if kind == "certificate" else "SecretNotFound"
        not_found = HttpError(
            404, code,
            f"A {kind} with (name/id) {what} was not found in this key vault. If you recently deleted this "
            f"{kind} you may be able to recover it using the correct recovery command. For help resolving "
            "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
        )
        if cert is None or not cert.versions:
            raise not_found
        if not version:
            return cert, cert.versions[-1]
        for v in cert.versions:
            if v.version == version.lower():
                return cert, v
        raise not_found

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        try:
            start = int(request.query.get("$skiptoken", "0"))
            size = int(request.query.get("maxresults") or self.page_size)
        except ValueError:
            raise HttpError(400, "BadParameter", "Invalid $skiptoken or maxresults.") from None
        if not 1 <= size <= _MAX_PAGE:
            raise HttpError(400, "BadParameter", f"maxresults must be within [1, {_MAX_PAGE}], got {size}.")
        size = min(size, self.page_size)
        body: dict[str, Any] = {"value": items[start:start + size], "nextLink": None}
        if start + size < len(items):
            body["nextLink"] = (f"{self.base_url}{request.path}?api-version={request.query['api-version']}"
                                f"&$skiptoken={start + size}&maxresults={size}")
        return Response(200, body)

    # -- handlers -----------------------------------------------------------------------------

    def import_certificate(self, request: Request) -> Response:
        self._check(request)
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("value"), str) or not body["value"]:
            raise HttpError(400, "BadParameter", "Property value is required.")
        policy = body.get("policy") or {}
        content_type = ((policy.get("secret_props") or {}).get("contentType")) or PKCS12_CONTENT_TYPE
        if content_type not in (PEM_CONTENT_TYPE, PKCS12_CONTENT_TYPE):
            raise HttpError(400, "BadParameter", f"Content type '{content_type}' is not supported.")
        tags = body.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise HttpError(400, "BadParameter", "Tags must be a map of strings to strings.")
        if len(tags) > _MAX_TAGS or any(len(k) > 512 or len(v) > 256 for k, v in tags.items()):
            raise HttpError(400, "BadParameter",
                            f"At most {_MAX_TAGS} tags, names up to 512 and values up to 256 characters.")
        enabled = (body.get("attributes") or {}).get("enabled", True)
        raw = body["value"]
        if content_type == PEM_CONTENT_TYPE and raw.lstrip().startswith("-----BEGIN"):
            data = raw.encode()  # the REST API also takes the PEM text itself
        else:
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise HttpError(400, "BadParameter", "The certificate value is not valid base64.") from None
        name = request.params["name"]
        stored = self._store(name, data, content_type, body.get("pwd"), tags, enabled=bool(enabled))
        bundle = self._bundle(self._certs[name.lower()].name, stored)
        self._record_event(self._certs[name.lower()].name, stored)
        return Response(200, bundle)

    def list_certificates(self, request: Request) -> Response:
        self._check(request)
        items = []
        for cert in sorted(self._certs.values(), key=lambda c: c.name.lower()):
            if cert.versions:
                item = self._item(cert.name, cert.versions[-1])
                item["id"] = f"{self.base_url}/certificates/{cert.name}"
                items.append(item)
        return self._page(request, items)

    def list_versions(self, request: Request) -> Response:
        self._check(request)
        cert = self._certs.get(request.params["name"].lower())
        # Like the real service: versions of an unknown certificate are an empty list, not a 404.
        items = [self._item(cert.name, v) for v in cert.versions] if cert else []
        return self._page(request, items)

    def get_certificate(self, request: Request) -> Response:
        self._check(request)
        cert, version = self._find(request.params["name"], request.params.get("version"))
        return Response(200, self._bundle(cert.name, version))

    def get_policy(self, request: Request) -> Response:
        self._check(request)
        cert, version = self._find(request.params["name"])
        return Response(200, self._policy(cert, version))

    def update_certificate(self, request: Request) -> Response:
        self._check(request)
        cert, version = self._find(request.params["name"], request.params.get("version"))
        body = request.json() or {}
        if "tags" in body and body["tags"] is not None:
            if not isinstance(body["tags"], dict):
                raise HttpError(400, "BadParameter", "Tags must be a map of strings to strings.")
            version.tags = {str(k): str(v) for k, v in body["tags"].items()}
        enabled = (body.get("attributes") or {}).get("enabled")
        if enabled is not None:
            version.enabled = bool(enabled)
        version.updated = utc_now()
        return Response(200, self._bundle(cert.name, version))

    def get_secret(self, request: Request) -> Response:
        self._check(request)
        cert, version = self._find(request.params["name"], request.params.get("version"), kind="secret")
        if not version.enabled:
            # A disabled version cannot be read: 403 Forbidden, inner code SecretDisabled, as the service answers
            # (https://github.com/Azure/azure-sdk-for-js/issues/24756, ansible-collections/azure#1989).
            return Response(403, {"error": {"code": "Forbidden",
                                            "message": "Operation get is not allowed on a disabled secret.",
                                            "innererror": {"code": "SecretDisabled"}}})
        base = self.base_url
        return Response(200, {
            "value": version.secret_value,
            "contentType": version.content_type,
            "id": f"{base}/secrets/{cert.name}/{version.version}",
            "managed": True,
            "kid": f"{base}/keys/{cert.name}/{version.version}",
            "attributes": self._attributes(version),
            "tags": dict(version.tags),
        })

    # -- parsing and rendering ----------------------------------------------------------------

    def _store(self, name: str, data: bytes, content_type: str, password: str | None, tags: dict[str, str],
               *, enabled: bool) -> _Version:
        if content_type == PEM_CONTENT_TYPE:
            key, chain, secret_value = self._parse_pem(data, password)
        else:
            key, chain, secret_value = self._parse_pfx(data, password)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509 import DNSName, ExtensionNotFound, SubjectAlternativeName

        leaf = chain[0]
        try:
            san = leaf.extensions.get_extension_for_class(SubjectAlternativeName).value
            sans = san.get_values_for_type(DNSName)
        except ExtensionNotFound:
            sans = []
        if isinstance(key, rsa.RSAPrivateKey):
            key_type, detail = "RSA", {"key_size": key.key_size}
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
            curve = curves.get(key.curve.name, "P-256")
            key_type, detail = "EC", {"crv": curve, "key_size": key.curve.key_size}
        else:
            raise HttpError(400, "BadParameter", "Only RSA and EC private keys are supported.")
        now = utc_now()
        version = _Version(
            version=uuid.uuid4().hex,
            der=leaf.public_bytes(serialization.Encoding.DER),
            secret_value=secret_value,
            content_type=content_type,
            not_before=leaf.not_valid_before_utc,
            expires=leaf.not_valid_after_utc,
            created=now,
            updated=now,
            enabled=enabled,
            tags=dict(tags),
            subject=leaf.subject.rfc4514_string(),
            sans=list(sans),
            key_type=key_type,
            key_detail=detail,
        )
        cert = self._certs.setdefault(name.lower(), _Certificate(name=name))
        cert.versions.append(version)
        cert.policy_content_type = content_type
        return version

    @staticmethod
    def _match_leaf(key: Any, certs: list[Any]) -> list[Any]:
        """Order the chain leaf first: the leaf is the certificate whose public key is the private key's."""
        from cryptography.hazmat.primitives import serialization

        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        wanted = key.public_key().public_bytes(*spki)
        leaves = [c for c in certs if c.public_key().public_bytes(*spki) == wanted]
        if not leaves:
            raise HttpError(400, "BadParameter",
                            "Private key specified in the X.509 PEM certificate content does not match with "
                            "the public key in the X.509 certificate. Please specify a valid private key.")
        return [leaves[0]] + [c for c in certs if c is not leaves[0]]

    def _parse_pem(self, data: bytes, password: str | None) -> tuple[Any, list[Any], str]:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        # Never echo the content back: it holds a private key.
        blocks = _PRIVATE_KEY_BLOCK.findall(data)
        if not blocks:
            raise HttpError(400, "BadParameter",
                            "Private key is not specified in the specified X.509 PEM certificate content. "
                            "Please specify private key in the X.509 PEM certificate content.")
        if len(blocks) > 1:
            raise HttpError(400, "BadParameter",
                            "The X.509 PEM certificate content holds more than one private key.")
        if blocks[0] not in (b"", b"ENCRYPTED "):
            raise HttpError(400, "BadParameter",
                            "The private key in the X.509 PEM certificate content must be in PKCS#8 format "
                            "(-----BEGIN PRIVATE KEY-----).")
        start = data.index(b"-----BEGIN " + blocks[0] + b"PRIVATE KEY-----")
        end_marker = b"-----END " + blocks[0] + b"PRIVATE KEY-----"
        end = data.find(end_marker, start)
        if end < 0:
            raise HttpError(400, "BadParameter", _BAD_PEM)
        try:
            key = serialization.load_pem_private_key(
                data[start:end + len(end_marker)], password.encode() if password else None)
        except (ValueError, TypeError):
            raise HttpError(400, "BadParameter",
                            "The private key in the X.509 PEM certificate content could not be read "
                            "(malformed, or a wrong password).") from None
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise HttpError(400, "BadParameter", _BAD_PEM) from None
        chain = self._match_leaf(key, certs)
        pem = serialization.Encoding.PEM
        # Key Vault stores the key unencrypted in PKCS#8, followed by the chain, leaf first.
        secret = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        secret += b"".join(c.public_bytes(pem) for c in chain)
        return key, chain, secret.decode()

    def _parse_pfx(self, data: bytes, password: str | None) -> tuple[Any, list[Any], str]:
        from cryptography.hazmat.primitives.serialization import pkcs12

        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
        except ValueError:
            raise HttpError(400, "BadParameter",
                            "The specified PKCS#12 X.509 certificate content can not be read. Please check "
                            "if certificate is in valid PKCS#12 format.") from None
        if key is None or cert is None:
            raise HttpError(400, "BadParameter",
                            "The PKCS#12 content must hold a private key and a certificate.")
        chain = self._match_leaf(key, [cert, *extra])
        return key, chain, base64.b64encode(data).decode()

    def _attributes(self, v: _Version) -> dict[str, Any]:
        return {"enabled": v.enabled, "nbf": _epoch(v.not_before), "exp": _epoch(v.expires),
                "created": _epoch(v.created), "updated": _epoch(v.updated), **_RECOVERY}

    def _item(self, name: str, v: _Version) -> dict[str, Any]:
        return {"id": f"{self.base_url}/certificates/{name}/{v.version}",
                "x5t": _b64url(hashlib.sha1(v.der).digest()),  # noqa: S324 - x5t is SHA-1 by definition  # nosec B324
                "attributes": self._attributes(v), "tags": dict(v.tags)}

    def _policy(self, cert: _Certificate, v: _Version) -> dict[str, Any]:
        months = max(1, round((v.expires - v.not_before).days / 30))
        key_props = {"exportable": True, "kty": v.key_type, "reuse_key": False, **v.key_detail}
        usage = ["digitalSignature", "keyAgreement" if v.key_type == "EC" else "keyEncipherment"]
        return {
            "id": f"{self.base_url}/certificates/{cert.name}/policy",
            "key_props": key_props,
            "secret_props": {"contentType": cert.policy_content_type},
            "x509_props": {"subject": v.subject, "sans": {"dns_names": list(v.sans)},
                           "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
                           "key_usage": usage,
                           "validity_months": months},
            "lifetime_actions": [{"trigger": {"lifetime_percentage": 80},
                                  "action": {"action_type": "EmailContacts"}}],
            "issuer": {"name": "Unknown"},
            "attributes": {"enabled": True, "created": _epoch(cert.policy_created),
                           "updated": _epoch(v.updated)},
        }

    def _bundle(self, name: str, v: _Version) -> dict[str, Any]:
        cert = self._certs[name.lower()]
        bundle = self._item(name, v)
        bundle.update({
            "kid": f"{self.base_url}/keys/{name}/{v.version}",
            "sid": f"{self.base_url}/secrets/{name}/{v.version}",
            "cer": base64.b64encode(v.der).decode(),
            "policy": self._policy(cert, v),
            "preserveCertOrder": False,
        })
        return copy.deepcopy(bundle)

    def _record_event(self, name: str, v: _Version,
                      event_type: str = "Microsoft.KeyVault.CertificateNewVersionCreated") -> dict[str, Any]:
        p = self.platform
        event = {
            "id": str(uuid.uuid4()),
            "topic": (f"/subscriptions/{p.subscription_id}/resourceGroups/{p.resource_group}/providers/"
                      f"Microsoft.KeyVault/vaults/{p.key_vault_name}"),
            "subject": name,
            "eventType": event_type,
            "eventTime": iso(utc_now() if event_type != "Microsoft.KeyVault.CertificateNewVersionCreated"
                             else v.created),
            "data": {
                "Id": f"{self.base_url}/certificates/{name}/{v.version}",
                "VaultName": p.key_vault_name,
                "ObjectType": "Certificate",
                "ObjectName": name,
                "Version": v.version,
                "NBF": _epoch(v.not_before),
                "EXP": _epoch(v.expires),
            },
            "dataVersion": "1",
            "metadataVersion": "1",
        }
        self.events.append(event)
        if event_type.endswith("NewVersionCreated"):
            for listener in list(self.on_new_version):
                listener(name, v.secret_value)
        self._forward(event)
        return event

    # -- Event Grid delivery (sandbox only; additive to the data-plane contract above) -----------------

    def emit(self, name: str, event_type: str = "Microsoft.KeyVault.CertificateNearExpiry") -> dict[str, Any]:
        """Publish an event for the latest version of ``name`` (e.g. NearExpiry, which a real vault sends
        30 days before expiry), recorded and forwarded like the others."""
        if not event_type.startswith("Microsoft.KeyVault."):
            event_type = f"Microsoft.KeyVault.{event_type}"
        with self.lock:
            cert, version = self._find(name)
            return self._record_event(cert.name, version, event_type)

    def _forward(self, event: dict[str, Any]) -> None:
        """POST to the subscriber as Event Grid does (``aeg-event-type: Notification``, a JSON array), in
        order, off the request thread: the app reads this vault while it handles the event."""
        if not self.subscriber_url:
            return
        import queue
        import threading

        if self._outbox is None:
            self._outbox = queue.Queue()
            threading.Thread(target=self._deliver_loop, name="sandbox-keyvault-events", daemon=True).start()
        self._outbox.put((self.subscriber_url, event))

    def _deliver_loop(self) -> None:
        import json
        import urllib.error
        import urllib.request

        while True:
            url, event = self._outbox.get()
            request = urllib.request.Request(url, data=json.dumps([event]).encode(), method="POST", headers={  # noqa: S310
                "content-type": "application/json", "aeg-event-type": "Notification",
                "aeg-subscription-name": "CERTIFICATE-EVENTS", "aeg-delivery-count": "0"})
            try:
                with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 - the loopback app URL  # nosec B310
                    status = answer.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            with self.lock:
                self.deliveries.append((status, event["eventType"]))

    def _control(self, request: Request) -> Response:
        """Adds ``POST /_sandbox/events`` ({"name", "type"}: emit an event) and ``POST /_sandbox/subscriber``
        ({"url"}: where events go) to the common control API."""
        if request.path == "/_sandbox/events" and request.method == "POST":
            body = request.json() or {}
            try:
                event = self.emit(str(body.get("name", "")), str(body.get("type") or "CertificateNearExpiry"))
            except HttpError as error:
                return Response(error.status, {"error": error.message})
            return Response(201, event)
        if request.path == "/_sandbox/subscriber" and request.method == "POST":
            self.subscriber_url = (request.json() or {}).get("url") or None
            return Response(200, {"url": self.subscriber_url})
        return super()._control(request)
