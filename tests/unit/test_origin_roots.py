"""The bundled Cloudflare Origin CA roots: what each rotated Key Vault version is imported with."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

BUNDLE = Path(__file__).resolve().parents[2] / "shared" / "services" / "cloudflare_origin_roots.pem"


def roots() -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(BUNDLE.read_bytes())


def test_the_bundle_holds_the_ecc_and_the_rsa_origin_roots_as_self_signed_cas():
    by_unit = {r.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value: r for r in roots()}
    assert set(by_unit) == {"CloudFlare Origin SSL ECC Certificate Authority",
                            "CloudFlare Origin SSL Certificate Authority"}
    ecc, rsa_root = (by_unit[f"CloudFlare Origin SSL {k}Certificate Authority"] for k in ("ECC ", ""))
    assert isinstance(ecc.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(rsa_root.public_key(), rsa.RSAPublicKey)
    for root in by_unit.values():
        assert root.subject == root.issuer
        root.verify_directly_issued_by(root)  # raises if the bytes were altered
        assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_roots_are_replaced_well_before_they_expire():
    # Cloudflare publishes successor roots ahead of 2029-08-15; this fails six months ahead so someone fetches them.
    horizon = dt.datetime.now(dt.UTC) + dt.timedelta(days=183)
    for root in roots():
        assert root.not_valid_after_utc > horizon, f"{root.subject.rfc4514_string()} expires {root.not_valid_after_utc}"
