"""Key Vault certificates: read what is installed, import a renewed one. On azure-keyvault-certificates.

Why it looks the way it does:

- Each import creates a **new version**; tags are per version, so each one records what issued it
  (Cloudflare certificate id, serial, hostnames). Consumers (external-secrets) read the latest.
- PEM import needs ``CertificatePolicy(issuer_name="Unknown", content_type=pem)``; without it Key
  Vault assumes PFX and refuses the bytes.
- The PEM carries the **private key**: it must never reach an error message or a log line. Errors
  from an import are rebuilt from the service's message, redacted, and not chained to the SDK
  exception (whose request object still holds the body).
- An import is not idempotent (each one is a new version). After an ambiguous failure (a timeout
  or a connection lost after sending, a 5xx) the latest version is read: if it holds the same
  certificate (serial) with our tags, it is adopted; otherwise ``OutcomeUnknownError``, which no
  retry re-sends.
- ``verify_challenge_resource`` stays on for real vaults (the challenge's resource must match the
  vault's domain) and is turned off only for a loopback or otherwise non-Azure vault URL.

The SDK is imported inside methods so that importing this module costs nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn, Protocol
from urllib.parse import urlparse

from shared.adapters import HttpOptions, map_azure_error
from shared.errors import BadInputError, OutcomeUnknownError, PermanentError
from shared.logs import redact_text

#: Domains whose vaults answer challenges for their own resource (public and sovereign clouds).
_VAULT_DOMAINS = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".managedhsm.azure.net")
_REMEDIATION_403 = (
    "grant the app's managed identity 'Key Vault Certificates Officer' (read and import certificates) "
    "on vault {vault} (infra/modules/automation), then retry"
)


@dataclass(frozen=True)
class StoredCertificate:
    """One version of a Key Vault certificate, without its key."""

    name: str
    version: str
    id: str
    not_before: dt.datetime | None
    expires_on: dt.datetime | None
    enabled: bool
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: SHA-1 of the DER certificate, upper-case hex (as the portal and ``openssl x509 -fingerprint`` show).
    thumbprint: str = ""
    created_on: dt.datetime | None = None
    #: Parsed from ``cer`` when the answer carried it (get/import do; version listings do not).
    subject_alternative_names: tuple[str, ...] = ()
    serial: str | None = None  # lower-case hex

    def days_left(self, now: dt.datetime) -> float | None:
        return None if self.expires_on is None else (self.expires_on - now).total_seconds() / 86400


class CertificateStore(Protocol):
    def get(self, name: str) -> StoredCertificate | None: ...

    def versions(self, name: str) -> list[StoredCertificate]: ...

    def import_pem(self, name: str, pem: bytes, tags: Mapping[str, str]) -> StoredCertificate: ...

    def probe(self) -> str: ...


def _parse_cer(cer: bytes | None) -> tuple[tuple[str, ...], str | None]:
    if not cer:
        return (), None
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(bytes(cer))
    except ValueError:
        return (), None
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(sans.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return names, format(cert.serial_number, "x")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def to_stored(properties: Any, cer: bytes | None = None) -> StoredCertificate:
    """From the SDK's ``CertificateProperties`` (plus ``cer`` when we have the full certificate)."""
    sans, serial = _parse_cer(cer)
    thumbprint = properties.x509_thumbprint
    return StoredCertificate(
        name=properties.name,
        version=properties.version or "",
        id=properties.id,
        not_before=_aware(properties.not_before),
        expires_on=_aware(properties.expires_on),
        enabled=bool(properties.enabled) if properties.enabled is not None else True,
        tags=MappingProxyType(dict(properties.tags or {})),
        thumbprint=thumbprint.hex().upper() if thumbprint else "",
        created_on=_aware(properties.created_on),
        subject_alternative_names=sans,
        serial=serial,
    )


def verify_challenge_resource_for(vault_url: str) -> bool:
    """Keep the SDK's challenge-resource check for real vaults; a loopback emulator cannot pass it."""
    host = (urlparse(vault_url).hostname or "").lower()
    return host.endswith(_VAULT_DOMAINS)


class KeyVaultCertificates:
    """``CertificateStore`` on azure-keyvault-certificates for one vault."""

    def __init__(self, vault_url: str, credential: Any, *, http: HttpOptions | None = None) -> None:
        from azure.keyvault.certificates import CertificateClient

        http = http or HttpOptions()
        self.vault_url = vault_url.rstrip("/")
        self._vault = urlparse(self.vault_url).hostname or self.vault_url
        self._client = CertificateClient(
            self.vault_url,
            credential,
            verify_challenge_resource=verify_challenge_resource_for(self.vault_url),
            connection_verify=http.verify,
            retry_total=http.max_retries,
            connection_timeout=http.timeout,
            read_timeout=http.timeout,
        )

    def get(self, name: str) -> StoredCertificate | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            cert = self._client.get_certificate(name)
        except ResourceNotFoundError:
            return None  # "never imported" is a normal answer for the rotation logic
        except Exception as exc:
            self._raise(exc, what=f"read certificate {name}")
        return to_stored(cert.properties, cert.cer)

    def versions(self, name: str) -> list[StoredCertificate]:
        """Every version of ``name``, oldest first (by creation time); empty when it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = [to_stored(p) for p in self._client.list_properties_of_certificate_versions(name)]
        except ResourceNotFoundError:
            return []
        except Exception as exc:
            self._raise(exc, what=f"list versions of certificate {name}")
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(found, key=lambda c: (c.created_on or epoch, c.not_before or epoch))

    def import_pem(self, name: str, pem: bytes, tags: Mapping[str, str]) -> StoredCertificate:
        from azure.keyvault.certificates import CertificateContentType, CertificatePolicy

        if not isinstance(pem, bytes | bytearray):
            raise BadInputError(f"import certificate {name}: the PEM must be bytes")
        clean_tags = {str(k): str(v) for k, v in tags.items()}
        policy = CertificatePolicy(issuer_name="Unknown", content_type=CertificateContentType.pem)
        failure: Exception | None = None
        ambiguous = False
        try:
            # retry_total=0: azure-core retries even a POST on 500/503/504, and each import is a version.
            cert = self._client.import_certificate(name, bytes(pem), policy=policy, tags=clean_tags, retry_total=0)
        except Exception as exc:
            failure = self._map(exc, what=f"import certificate {name}", importing=True)
            ambiguous = _ambiguous(exc)
        if failure is not None and ambiguous:
            adopted = self.find_imported(name, pem, clean_tags)
            if adopted is not None:
                return adopted
            failure = OutcomeUnknownError(f"{failure} (the import was sent and may have created a version)",
                                          code="OutcomeUnknown")
        if failure is not None:
            # Raised outside the except block on purpose: no __context__ pointing at the SDK exception,
            # whose request still holds the PEM (private key) in its body.
            raise failure
        return to_stored(cert.properties, cert.cer)

    def find_imported(self, name: str, pem: bytes, tags: Mapping[str, str]) -> StoredCertificate | None:
        """The latest version of ``name`` if it is the certificate in ``pem`` (same serial) carrying
        ``tags``: what an import whose answer was lost created. None otherwise."""
        from cryptography import x509

        try:
            leaf = x509.load_pem_x509_certificates(bytes(pem))[0]
        except ValueError:
            return None
        latest = self.get(name)
        if latest is None or latest.serial != format(leaf.serial_number, "x"):
            return None
        return latest if all(latest.tags.get(k) == v for k, v in tags.items()) else None

    def probe(self) -> str:
        try:
            pages = self._client.list_properties_of_certificates().by_page()
            first = list(next(pages, []))  # one page is enough to prove access
        except Exception as exc:
            self._raise(exc, what=f"list certificates in {self._vault}")
        parts = ", ".join(
            f"{p.name} expires {p.expires_on:%Y-%m-%d}" if p.expires_on else str(p.name) for p in first[:5]
        )
        more = "+" if len(first) > 5 else ""
        return f"{len(first)}{more} certificates in {self._vault}" + (f" ({parts})" if parts else "")

    def _raise(self, exc: Exception, *, what: str) -> NoReturn:
        """Raise our error for an SDK one (chained, for debugging); anything else propagates as is."""
        mapped = self._map(exc, what=what)
        if mapped is exc:
            raise exc
        raise mapped from exc

    def _map(self, exc: Exception, *, what: str, importing: bool = False) -> Exception:
        from azure.core.exceptions import AzureError

        if not isinstance(exc, AzureError):
            if isinstance(exc, ValueError) and "challenge" in str(exc).lower():
                # The vault's challenge named another resource than the vault's domain.
                return PermanentError(
                    redact_text(f"{what}: {exc}"), code="ChallengeRejected",
                    remediation=f"check KEYVAULT_URL ({self.vault_url}) points at the vault",
                )
            return exc
        mapped = map_azure_error(exc, what=what, remediation_403=_REMEDIATION_403.format(vault=self._vault))
        if importing and getattr(exc, "status_code", None) == 400 and isinstance(mapped, PermanentError):
            mapped.remediation = ("Key Vault refused the certificate content; check the PEM holds a PKCS#8 "
                                  "private key and its certificate chain")
        return mapped


def _ambiguous(exc: Exception) -> bool:
    """Whether a failed import may have been applied: sent, and no answer proving it was not."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, ServiceRequestError):
        return False  # never sent
    if isinstance(exc, ServiceResponseError):
        return True  # sent; the answer timed out or the connection dropped
    return isinstance(exc, HttpResponseError) and (exc.status_code or 0) >= 500


def build(ctx: Any) -> KeyVaultCertificates:
    vault_url = ctx.settings.keyvault_url or ctx.platform.key_vault_url
    return KeyVaultCertificates(vault_url, ctx.azure_credential, http=ctx.http)
