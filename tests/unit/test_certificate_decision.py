"""The renewal decision: pure, ``now`` passed in, one reason code per outcome (table-driven)."""

import dataclasses
import datetime as dt

import pytest

from shared.platform import CertificateRotation, CertificateSpec
from shared.services.certificates import CurrentVersion, Input, decide

NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
SPEC = CertificateSpec(name="origin-dev-platform", zone="platform.example.com", zone_id="z" * 32,
                       hostnames=("dev.platform.example.com", "*.dev.platform.example.com"),
                       request_type="origin-ecc", validity_days=90, renew_before_days=30)
POLICY = CertificateRotation()
ORIGIN_ISSUER = "OU=CloudFlare Origin SSL ECC Certificate Authority,O=CloudFlare\\, Inc.,C=US"


def version(days_left=60.0, lifetime=90, **changes):
    not_after = NOW + dt.timedelta(days=days_left)
    base = CurrentVersion(version="v1", serial="abc", issuer=ORIGIN_ISSUER,
                          not_before=not_after - dt.timedelta(days=lifetime), not_after=not_after,
                          hostnames=SPEC.hostnames, key_type="EC")
    return dataclasses.replace(base, **changes)


CASES = {
    "a missing certificate is renewed": (None, {}, "Missing"),
    "an expired certificate is renewed": (version(days_left=-1), {}, "Expired"),
    "a certificate from another CA is renewed": (version(issuer="CN=R11,O=Let's Encrypt,C=US"), {}, "NotOriginCA"),
    "a certificate with an unknown issuer is renewed": (version(issuer=None), {}, "NotOriginCA"),
    "a certificate missing a hostname is renewed": (version(hostnames=("dev.platform.example.com",)), {},
                                                    "HostnamesChanged"),
    "a certificate with an extra hostname is renewed": (version(hostnames=(*SPEC.hostnames, "x.platform.example.com")),
                                                        {}, "HostnamesChanged"),
    "hostnames compare without case or order": (version(hostnames=("*.DEV.platform.example.com",
                                                                   "dev.platform.example.com")), {}, "UpToDate"),
    "an RSA key when origin-ecc is configured is renewed": (version(key_type="RSA"), {}, "KeyTypeChanged"),
    "an EC key when origin-rsa is configured is renewed": (version(), {"request_type": "origin-rsa"},
                                                           "KeyTypeChanged"),
    "a certificate inside renew_before_days is renewed": (version(days_left=29.9, lifetime=365), {},
                                                          "InsideRenewBefore"),
    "a certificate with less than a third of its lifetime left is renewed": (version(days_left=100, lifetime=365),
                                                                             {}, "LifetimeShareLow"),
    "a certificate with enough time left is kept": (version(days_left=60, lifetime=90), {}, "UpToDate"),
    "a forced renewal wins over a healthy certificate": (version(), {"force": True}, "Forced"),
}


@pytest.mark.parametrize("current, changes, reason", CASES.values(), ids=CASES.keys())
def test_the_decision_names_the_reason(current, changes, reason):
    spec_changes = {k: v for k, v in changes.items() if k in ("request_type",)}
    spec = dataclasses.replace(SPEC, **spec_changes)
    decision = decide(Input(spec=spec, policy=POLICY, current=current, now=NOW, force=changes.get("force", False)))
    assert decision.reason == reason
    assert decision.renew is (reason != "UpToDate")
    assert decision.message.startswith(SPEC.name)


def test_an_up_to_date_certificate_is_checked_again_within_a_day():
    decision = decide(Input(spec=SPEC, policy=POLICY, current=version(days_left=60), now=NOW))
    assert decision.next_check == NOW + dt.timedelta(days=1)
    assert decision.days_left == 60.0


def test_the_next_check_is_the_renewal_time_when_it_comes_sooner_than_a_day():
    current = version(days_left=30.5, lifetime=90)
    decision = decide(Input(spec=SPEC, policy=POLICY, current=current, now=NOW))
    assert decision.reason == "UpToDate"
    assert decision.next_check == current.not_after - dt.timedelta(days=30)


def test_the_lifetime_share_is_configurable():
    current = version(days_left=60, lifetime=90)
    policy = CertificateRotation(renew_lifetime_share=0.75)
    assert decide(Input(spec=SPEC, policy=policy, current=current, now=NOW)).reason == "LifetimeShareLow"


def test_checks_run_in_order_so_an_expired_foreign_certificate_reports_expiry():
    current = version(days_left=-3, issuer="CN=Other")
    assert decide(Input(spec=SPEC, policy=POLICY, current=current, now=NOW)).reason == "Expired"
