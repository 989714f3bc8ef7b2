"""Cloudflare Origin CA: issue, list, read and revoke origin certificates (official ``cloudflare`` SDK).

Why the details below:
- ``create`` runs with ``max_retries=0``: the SDK retries POST on 5xx/409/429/timeouts and Cloudflare
  does not deduplicate, so an SDK retry can issue a second certificate. Our caller's retry policy
  decides instead, with ``TemporaryError.retry_after``.
- Cloudflare puts the real reason in the envelope's ``errors[].code``, not in the HTTP status: 1100
  (database write) and 1201 (CA signing) are transient whatever the status says; 10000 and 1016
  need a human.
- Keys, CSRs and the token never reach an error message: the envelope echoes request fields at
  times, so every message goes through ``redact_text``.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shared.adapters import HttpOptions, retry_after_seconds
from shared.errors import ConflictError, NotFoundError, PermanentError, PlatformError, TemporaryError
from shared.logs import redact_text

if TYPE_CHECKING:
    from shared.context import Context
    from shared.platform import CertificateSpec

AUTH_REMEDIATION = "check CLOUDFLARE_API_TOKEN has Zone > SSL and Certificates > Edit"
TRANSIENT_CODES = frozenset({1100, 1201})  # "Failed to write certificate to Database", "CA signing failure"
AUTH_CODES = frozenset({10000, 1016})


@dataclass(frozen=True)
class OriginCertificate:
    id: str  # the X.509 serial number, as Cloudflare reports it
    certificate: str  # PEM leaf (public)
    hostnames: tuple[str, ...]
    request_type: str
    validity_days: int
    expires_on: dt.datetime | None


@dataclass(frozen=True)
class KeyAndCsr:
    #: PKCS#8 PEM private key: goes to Key Vault with the certificate, nowhere else.
    key_pem: str = field(repr=False)
    csr_pem: str = field(repr=False)


class OriginCA(Protocol):
    def create(self, csr_pem: str, hostnames: list[str] | tuple[str, ...], request_type: str,
               validity_days: int) -> OriginCertificate: ...

    def list(self, zone_id: str) -> list[OriginCertificate]: ...

    def get(self, id: str) -> OriginCertificate | None: ...

    def revoke(self, id: str) -> dt.datetime: ...

    def probe(self) -> str: ...


def make_key_and_csr(spec: CertificateSpec) -> KeyAndCsr:
    """A fresh private key and a CSR for ``spec`` (EC P-256 for origin-ecc, RSA 2048 for origin-rsa).

    Pure: no I/O. The CSR's subject is the first non-wildcard hostname; all hostnames go in the SAN,
    which is what Cloudflare (and browsers) read.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    if spec.request_type == "origin-ecc":
        key: Any = ec.generate_private_key(ec.SECP256R1())
    elif spec.request_type == "origin-rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise PermanentError(f"certificate {spec.name}: unsupported request_type {spec.request_type!r}",
                             remediation="use origin-ecc or origin-rsa in platform.yaml")
    common = next((h for h in spec.hostnames if not h.startswith("*.")), spec.hostnames[0].removeprefix("*."))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in spec.hostnames]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return KeyAndCsr(key_pem=key_pem, csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode())


def parse_cloudflare_time(value: Any) -> dt.datetime | None:
    """``expires_on`` comes as ``2026-01-01 05:20:00 +0000 UTC`` (Go format) or ISO 8601."""
    if value is None or isinstance(value, dt.datetime):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S %z UTC", "%Y-%m-%d %H:%M:%S %z"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class CloudflareOriginCA:
    """``OriginCA`` on ``cloudflare.Cloudflare``; the client is made on first use."""

    def __init__(self, api_token: str | None, base_url: str, http: HttpOptions | None = None,
                 page_size: int = 50) -> None:
        self._token = api_token
        self._base_url = base_url
        self._http = http or HttpOptions()
        self._page_size = page_size
        self._lock = threading.Lock()
        self._clients: tuple[Any, Any] | None = None

    def _sdk(self) -> tuple[Any, Any]:
        """(client, client without retries for create)."""
        if not self._token:
            raise PermanentError("Cloudflare: CLOUDFLARE_API_TOKEN is not set", code="NotConfigured",
                                 remediation=f"set CLOUDFLARE_API_TOKEN; {AUTH_REMEDIATION}")
        with self._lock:
            if self._clients is None:
                import cloudflare

                kwargs: dict[str, Any] = {}
                if self._http.ca_bundle:
                    import ssl

                    context = ssl.create_default_context(cafile=self._http.ca_bundle)
                    kwargs["http_client"] = cloudflare.DefaultHttpxClient(verify=context)
                client = cloudflare.Cloudflare(api_token=self._token, base_url=self._base_url,
                                               max_retries=self._http.max_retries, timeout=self._http.timeout,
                                               **kwargs)
                self._clients = (client, client.with_options(max_retries=0))
            return self._clients

    # -- operations ---------------------------------------------------------------------------

    def create(self, csr_pem: str, hostnames: list[str] | tuple[str, ...], request_type: str,
               validity_days: int) -> OriginCertificate:
        _, no_retry = self._sdk()
        try:
            # requested_validity is always sent: omitted, Cloudflare issues a 15-year certificate.
            result = no_retry.origin_ca_certificates.create(
                csr=csr_pem, hostnames=list(hostnames), request_type=request_type,
                requested_validity=validity_days,
            )
        except Exception as exc:
            raise _map_error(exc, "Cloudflare: create origin certificate") from None
        return _certificate(_require(result, "create origin certificate"))

    def list(self, zone_id: str) -> list[OriginCertificate]:
        client, _ = self._sdk()
        try:
            # The SDK's pager walks ?page=N until a page comes back empty.
            pager = client.origin_ca_certificates.list(zone_id=zone_id, per_page=self._page_size)
            return [_certificate(c) for c in pager]
        except Exception as exc:
            raise _map_error(exc, f"Cloudflare: list origin certificates for zone {zone_id}") from None

    def get(self, id: str) -> OriginCertificate | None:
        client, _ = self._sdk()
        try:
            result = client.origin_ca_certificates.get(id)
        except Exception as exc:
            mapped = _map_error(exc, f"Cloudflare: get origin certificate {id}")
            if isinstance(mapped, NotFoundError):
                return None
            raise mapped from None
        return _certificate(result) if result is not None else None

    def revoke(self, id: str) -> dt.datetime:
        client, _ = self._sdk()
        try:
            result = client.origin_ca_certificates.delete(id)
        except Exception as exc:
            raise _map_error(exc, f"Cloudflare: revoke origin certificate {id}") from None
        revoked = parse_cloudflare_time(getattr(_require(result, "revoke origin certificate"), "revoked_at", None))
        return revoked or dt.datetime.now(dt.UTC)

    def probe(self) -> str:
        """One cheap authenticated read: the token's own verification endpoint."""
        client, _ = self._sdk()
        try:
            status = client.user.tokens.verify()
        except Exception as exc:
            raise _map_error(exc, "Cloudflare: verify API token") from None
        return f"Cloudflare API token is {getattr(status, 'status', 'unknown')} at {self._base_url}"


def _require(result: Any, what: str) -> Any:
    # A 2xx without the envelope's result (success false or a proxy's page) deserialises to None.
    if result is None:
        raise TemporaryError(f"Cloudflare: {what}: the answer carried no result", code="EmptyResult")
    return result


def _certificate(model: Any) -> OriginCertificate:
    return OriginCertificate(
        id=str(model.id),
        certificate=model.certificate or "",
        hostnames=tuple(model.hostnames or ()),
        request_type=str(model.request_type),
        validity_days=int(model.requested_validity),
        expires_on=parse_cloudflare_time(model.expires_on),
    )


def _envelope_errors(body: Any) -> list[tuple[int | None, str]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    out: list[tuple[int | None, str]] = []
    for err in errors or []:
        if isinstance(err, dict):
            code = err.get("code")
            out.append((code if isinstance(code, int) else None, str(err.get("message", ""))))
    return out


def _map_error(exc: Exception, what: str) -> PlatformError:
    """Translate a ``cloudflare`` SDK exception into our error tree (the seam)."""
    import cloudflare

    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, cloudflare.APITimeoutError):
        return TemporaryError(redact_text(f"{what}: timed out"), code="Timeout")
    if isinstance(exc, cloudflare.APIConnectionError):
        return TemporaryError(redact_text(f"{what}: cannot reach Cloudflare ({exc.message})"),
                              code="ServiceUnreachable")
    if not isinstance(exc, cloudflare.APIStatusError):
        return PermanentError(redact_text(f"{what}: {type(exc).__name__}: {exc}"), code=type(exc).__name__,
                              remediation="unexpected SDK failure; see the logs")

    status = exc.status_code
    errors = _envelope_errors(exc.body)
    codes = {c for c, _ in errors if c is not None}
    detail = "; ".join(f"{c} {m}".strip() for c, m in errors) or exc.response.reason_phrase
    message = redact_text(f"{what}: Cloudflare answered {status}: {detail}")
    code = f"Cloudflare{min(codes)}" if codes else f"HTTP{status}"
    retry_after = retry_after_seconds(exc.response.headers)

    if codes & TRANSIENT_CODES:
        return TemporaryError(message, code=code, retry_after=retry_after)
    if codes & AUTH_CODES or status in (401, 403):
        return PermanentError(message, code=code, remediation=AUTH_REMEDIATION)
    if status == 404:
        return NotFoundError(message, code=code,
                             remediation="check the certificate id and the zone_id in platform.yaml")
    if status in (409, 412):
        return ConflictError(message, code=code, remediation="the certificate changed concurrently; re-read it")
    if status == 429 or status >= 500:
        return TemporaryError(message, code=code, retry_after=retry_after)
    return PermanentError(message, code=code,
                          remediation="Cloudflare refused the request as invalid; check hostnames, request_type "
                                      "and validity_days in platform.yaml")


def build(ctx: Context) -> CloudflareOriginCA:
    s = ctx.settings
    return CloudflareOriginCA(s.cloudflare_api_token, s.cloudflare_base_url, ctx.http)
