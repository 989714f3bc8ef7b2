"""Origin certificate rotation end to end through the real SDKs: the Key Vault, Cloudflare and Kubernetes
emulators, Azurite for state, the app's own functions. Each test gets its own certificate name."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import logging
import threading
import uuid

import azure.functions as func
import pytest
from _fixtures_saas import sandbox_settings
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from functions import certificates as certificate_functions
from shared.context import Context, set_context
from shared.credentials import StaticTokenCredential
from shared.errors import PermanentError, TemporaryError
from shared.local.sandbox.cloudflare import CloudflareEmulator
from shared.local.sandbox.keyvault import KeyVaultEmulator
from shared.local.sandbox.kubernetes import KubernetesEmulator
from shared.platform import CertificateRotation
from shared.services import certificates_rotation as rotation

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(scope="module")
def emulators(sandbox_ca, dev_platform):
    vault = KeyVaultEmulator(dev_platform, seed=False)
    cloudflare = CloudflareEmulator(dev_platform)
    kube = KubernetesEmulator(dev_platform)
    vault.start(sandbox_ca)
    cloudflare.start()
    kube.start()
    yield vault, cloudflare, kube
    for emulator in (vault, cloudflare, kube):
        emulator.stop()


@dataclasses.dataclass
class Env:
    ctx: Context
    spec: object
    vault: KeyVaultEmulator
    cloudflare: CloudflareEmulator
    kube: KubernetesEmulator
    clock: Clock
    sync: dict

    def event(self, kind="CertificateNearExpiry", *, cloud_events=False, **data_changes):
        latest = self.vault.latest(self.spec.name)
        version = latest["id"].rsplit("/", 1)[1] if latest else "0" * 32
        data = {"Id": f"{self.vault.base_url}/certificates/{self.spec.name}/{version}",
                "VaultName": self.ctx.platform.key_vault_name, "ObjectType": "Certificate",
                "ObjectName": self.spec.name, "Version": version, "NBF": 0, "EXP": 0, **data_changes}
        topic = (f"/subscriptions/{self.ctx.platform.subscription_id}/resourceGroups/rg/providers/"
                 f"Microsoft.KeyVault/vaults/{self.ctx.platform.key_vault_name}")
        return func.EventGridEvent(id=str(uuid.uuid4()), data=data, topic=topic, subject=self.spec.name,
                                   event_type=f"Microsoft.KeyVault.{kind}", event_time=None,
                                   data_version="1" if not cloud_events else "")

    def deliver(self, event):
        certificate_functions.keyvault_certificate_events(event)

    def issued(self):
        return [c for c in self.cloudflare.certificates.values()
                if set(c["hostnames"]) == {h.lower() for h in self.spec.hostnames}]

    def versions(self):
        return self.vault.versions(self.spec.name)


@pytest.fixture
def env(emulators, storage, sandbox_ca, dev_platform):
    vault, cloudflare, kube = emulators
    for emulator in emulators:
        emulator.clear_faults()
    cloudflare.certificates.clear()
    vault.events.clear()
    name = f"origin-t{uuid.uuid4().hex[:10]}"
    spec = dataclasses.replace(dev_platform.certificates[0], name=name,
                               synced_secrets=(f"ingress-nginx/{name}", f"model-serving/{name}"))
    platform = dataclasses.replace(dev_platform, certificates=(spec,), certificate_rotation=CertificateRotation(
        grace_period_minutes=30, orphan_cleanup="revoke"))
    clock = Clock()
    ctx = Context(settings=sandbox_settings(vault, cloudflare, kube, TLS_CA_BUNDLE=str(sandbox_ca.ca_path)),
                  platform=platform, clock=clock, credential=StaticTokenCredential(),
                  overrides={"storage": storage, "origin_roots": [cloudflare.roots.pem("ecc")]})
    sync = {"on": True}

    def external_secrets(cert_name, value):
        if sync["on"] and cert_name == name:
            for ref in spec.synced_secrets:
                kube.sync_tls_secret(ref, value)

    vault.on_new_version.append(external_secrets)
    set_context(ctx)
    yield Env(ctx, spec, vault, cloudflare, kube, clock, sync)
    set_context(None)
    vault.on_new_version.remove(external_secrets)


def seed_near_expiry(env):
    env.vault.seed_certificate(env.spec)  # from the emulated Origin CA, inside renew_before_days
    return env.vault.latest(env.spec.name)


def secret_pem(env) -> str:
    return env.vault.secret_value(env.spec.name)


def test_a_near_expiry_event_renews_with_the_configured_key_type_validity_and_tags(env):
    seed_near_expiry(env)
    env.deliver(env.event("CertificateNearExpiry"))

    [issued] = env.issued()
    assert issued["request_type"] == "origin-ecc" and issued["requested_validity"] == 90
    versions = env.versions()
    assert len(versions) == 2
    tags = versions[-1]["tags"]
    assert tags["managed-by"] == "platform-core" and tags["cloudflare-id"] == issued["id"]
    assert tags["serial"] == format(int(issued["id"]), "x") and tags["actor"] == "keyvault-event"
    assert tags["supersedes"] == versions[0]["tags"]["cloudflare-id"]
    pem = secret_pem(env)
    assert pem.count("BEGIN PRIVATE KEY") == 1 and pem.count("BEGIN CERTIFICATE") == 2  # leaf + Origin root
    leaf, root = x509.load_pem_x509_certificates(pem.encode())
    assert root.subject == leaf.issuer and "Origin" in root.subject.rfc4514_string()
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days in (89, 90)


def test_an_origin_rsa_certificate_gets_an_rsa_2048_key(env):
    spec = dataclasses.replace(env.spec, request_type="origin-rsa")
    env.ctx.platform = dataclasses.replace(env.ctx.platform, certificates=(spec,))
    env.ctx.overrides["origin_roots"] = [env.cloudflare.roots.pem("rsa")]
    outcome = rotation.check(env.ctx, spec.name, actor="test", trigger="test")
    assert outcome.action == "rotated" and outcome.decision.reason == "Missing"
    leaf = x509.load_pem_x509_certificates(secret_pem(env).encode())[0]
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey) and leaf.public_key().key_size == 2048


def test_a_cloud_events_delivery_is_accepted_too(env):
    seed_near_expiry(env)
    env.deliver(env.event("CertificateExpired", cloud_events=True))
    assert len(env.issued()) == 1


def test_the_daily_timer_renews_a_certificate_whose_event_was_lost(env):
    seed_near_expiry(env)
    summary = certificate_functions.run_daily_check()
    assert summary["checked"] == {env.spec.name: "rotated"}
    assert len(env.issued()) == 1 and len(env.versions()) == 2
    assert certificate_functions.run_daily_check()["checked"] == {env.spec.name: "kept"}


def test_the_same_event_twice_gives_one_certificate_and_one_version(env):
    seed_near_expiry(env)
    event = env.event()
    env.deliver(event)
    env.deliver(event)
    env.deliver(env.event())  # a second NearExpiry (new id) for the same version: already rotated
    assert len(env.issued()) == 1 and len(env.versions()) == 2


def test_two_concurrent_triggers_give_exactly_one_certificate_and_one_version(env):
    seed_near_expiry(env)
    env.cloudflare.inject(status=None, delay=0.5, method="POST", path="certificates")  # keep the lease busy
    errors = []

    def trigger(fn):
        try:
            fn()
        except TemporaryError as error:
            errors.append(error.code)

    threads = [threading.Thread(target=trigger, args=(lambda: env.deliver(env.event()),)),
               threading.Thread(target=trigger, args=(certificate_functions.run_daily_check,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(env.issued()) == 1 and len(env.versions()) == 2
    assert set(errors) <= {"LeaseHeld"}


def test_our_own_new_version_event_does_not_rotate_again(env):
    seed_near_expiry(env)
    env.deliver(env.event())
    [own] = [e for e in env.vault.events if e["eventType"].endswith("NewVersionCreated")]
    event = func.EventGridEvent(id=own["id"], data=own["data"], topic=own["topic"], subject=own["subject"],
                                event_type=own["eventType"], event_time=None, data_version="1")
    env.deliver(event)
    assert len(env.issued()) == 1 and len(env.versions()) == 2
    assert rotation.observe_new_version(env.ctx, env.spec.name, own["data"]["Version"], actor="t") == "own"


def test_a_foreign_import_is_reported_and_audited(env, caplog):
    seed_near_expiry(env)
    now = dt.datetime.now(dt.UTC)
    key, chain, _ = env.vault.origin_ca.issue(env.spec.hostnames, not_before=now, not_after=now + dt.timedelta(90))
    env.ctx.certificates.import_pem(env.spec.name, key + chain, {"owner": "someone"})
    [foreign] = [e for e in env.vault.events if e["eventType"].endswith("NewVersionCreated")]
    with caplog.at_level(logging.INFO):
        env.deliver(func.EventGridEvent(id=foreign["id"], data=foreign["data"], topic=foreign["topic"],
                                        subject=foreign["subject"], event_type=foreign["eventType"],
                                        event_time=None, data_version="1"))
    assert env.issued() == []
    assert any("CERT_FOREIGN_IMPORT" in r.getMessage() for r in caplog.records)
    trail = env.ctx.state.audit_trail(rotation.target(env.ctx, env.spec.name))
    assert [(r.action, r.reason, r.outcome) for r in trail] == [("observe", "ForeignImport", "reported")]


def test_an_import_failure_revokes_the_certificate_just_issued(env):
    seed_near_expiry(env)
    env.vault.inject(status=400, code="BadParameter", message="refused", method="POST", path="/import", times=None)
    with pytest.raises(PermanentError):
        rotation.check(env.ctx, env.spec.name, actor="test", trigger="test")
    [issued] = env.issued()
    assert issued["revoked_at"], "the certificate issued for the failed import must be revoked"
    assert len(env.versions()) == 1
    trail = env.ctx.state.audit_trail(rotation.target(env.ctx, env.spec.name))
    # The test clock stands still, so records of one instant come in any order.
    assert sorted((r.action, r.reason, r.outcome) for r in trail) == [
        ("revoke", "ImportFailed", "succeeded"), ("rotate", "InsideRenewBefore", "failed")]


def test_a_429_is_retried_after_retry_after_then_succeeds(env):
    seed_near_expiry(env)
    env.cloudflare.inject(status=429, code="971", message="Rate limited", retry_after=2, method="POST",
                          path="certificates$", times=1)
    waits = []
    outcome = rotation.check(env.ctx, env.spec.name, actor="test", trigger="test", sleep=waits.append)
    assert outcome.action == "rotated" and waits == [2.0]
    assert len(env.issued()) == 1 and len(env.versions()) == 2


def test_a_create_that_failed_ambiguously_is_adopted_not_sent_again(env):
    seed_near_expiry(env)
    # The certificate is issued, then the answer is lost: a 502 after the write.
    posts = env.cloudflare.count("POST", "certificates$")
    env.cloudflare.inject(status=502, code="10002", message="Bad gateway", method="POST", path="certificates$",
                          after=True)
    outcome = rotation.check(env.ctx, env.spec.name, actor="test", trigger="test", sleep=lambda s: None)
    assert outcome.action == "adopted"
    assert len(env.issued()) == 1 and env.cloudflare.count("POST", "certificates$") == posts + 1
    assert env.versions()[-1]["tags"]["cloudflare-id"] == env.issued()[0]["id"]


def test_an_ambiguous_create_with_nothing_to_adopt_is_deferred_without_sending_again(env):
    seed_near_expiry(env)
    posts = env.cloudflare.count("POST", "certificates$")
    env.cloudflare.inject(status=504, code="10002", message="Gateway timeout", method="POST", path="certificates$")
    with pytest.raises(TemporaryError) as caught:
        rotation.check(env.ctx, env.spec.name, actor="test", trigger="test", sleep=lambda s: None)
    assert caught.value.code == "OutcomeUnknown"
    assert env.cloudflare.count("POST", "certificates$") == posts + 1 and len(env.versions()) == 1


def test_temporary_cloudflare_failures_are_bounded_then_deferred(env, caplog):
    seed_near_expiry(env)
    env.cloudflare.inject(status=500, code="1201", message="CA signing failure", method="POST", path="certificates$",
                          times=None)
    waits = []
    with caplog.at_level(logging.WARNING), pytest.raises(TemporaryError):
        rotation.check(env.ctx, env.spec.name, actor="test", trigger="test", sleep=waits.append)
    assert len(waits) == rotation.POLICY.attempts - 1
    assert any("CERT_ROTATION_DEFERRED" in r.getMessage() for r in caplog.records)
    assert [r.outcome for r in env.ctx.state.audit_trail(rotation.target(env.ctx, env.spec.name))] == ["deferred"]
    assert len(env.versions()) == 1


def test_an_authentication_failure_alerts_and_changes_nothing(env, caplog, sandbox_ca):
    seed_near_expiry(env)
    env.ctx.settings = sandbox_settings(env.vault, env.cloudflare, env.kube, TLS_CA_BUNDLE=str(sandbox_ca.ca_path),
                                        CLOUDFLARE_API_TOKEN="canary-wrong-token-0123456789")
    env.ctx.__dict__.pop("origin_ca", None)
    with caplog.at_level(logging.WARNING):
        env.deliver(env.event())  # answered 2xx: redelivering cannot help
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(r.getMessage().startswith("CERT_ROTATION_AUTH_FAILED") for r in errors)
    assert env.issued() == [] and len(env.versions()) == 1
    assert "canary-wrong-token-0123456789" not in caplog.text
    [record] = env.ctx.state.audit_trail(rotation.target(env.ctx, env.spec.name))
    assert record.outcome == "failed" and "Cloudflare10000" in record.message


MALFORMED = {
    "another vault": {"data": {"VaultName": "kv-someone-else"}},
    "another object type": {"type": "Microsoft.KeyVault.SecretNearExpiry", "data": {"ObjectType": "Secret"}},
    "an unmanaged certificate": {"data": {"ObjectName": "not-ours", "Id": None}, "subject": "not-ours"},
    "no data at all": {"data": None, "subject": ""},
    "data that is not an object": {"data": "garbage", "subject": ""},
    "an unknown event type": {"type": "Microsoft.Storage.BlobCreated"},
}


@pytest.mark.parametrize("changes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_and_foreign_events_are_ignored_without_raising(env, changes, caplog):
    seed_near_expiry(env)
    base = env.event()
    data = base.get_json()
    if "data" in changes:
        data = changes["data"] if not isinstance(changes["data"], dict) else {
            k: v for k, v in {**data, **changes["data"]}.items() if v is not None}
    event = func.EventGridEvent(id=base.id, data=data, topic=base.topic, subject=changes.get("subject", base.subject),
                                event_type=changes.get("type", base.event_type), event_time=None, data_version="1")
    with caplog.at_level(logging.INFO):
        env.deliver(event)
    assert env.issued() == []
    assert any(r.getMessage().startswith("ignored Key Vault event") for r in caplog.records)


def test_revocation_waits_for_the_grace_period_and_every_synced_secret(env):
    env.sync["on"] = False
    first = rotation.check(env.ctx, env.spec.name, actor="test", trigger="test")  # Missing -> issue A
    second = rotation.check(env.ctx, env.spec.name, actor="test", trigger="test", force=True)  # B supersedes A
    assert first.cloudflare_id != second.cloudflare_id

    [pending] = rotation.pending_revocations(env.ctx, env.spec.name)
    assert pending.cloudflare_id == first.cloudflare_id and pending.new_serial == second.serial
    assert rotation.retire(env.ctx, actor="test")[0]["waiting"].startswith("grace period until")

    env.clock.advance(minutes=31)
    waiting = rotation.retire(env.ctx, actor="test")[0]["waiting"]
    assert f"ingress-nginx/{env.spec.name} (missing)" in waiting and "model-serving" in waiting

    env.kube.sync_tls_secret(env.spec.synced_secrets[0], secret_pem(env))  # one namespace caught up
    waiting = rotation.retire(env.ctx, actor="test")[0]["waiting"]
    assert "ingress-nginx" not in waiting and f"model-serving/{env.spec.name}" in waiting
    status = rotation.status(env.ctx)[0]
    assert status["pending_revocations"][0]["waiting"] == waiting

    env.kube.sync_tls_secret(env.spec.synced_secrets[1], secret_pem(env))
    assert rotation.retire(env.ctx, actor="test") == [
        {"certificate": env.spec.name, "cloudflare_id": first.cloudflare_id, "outcome": "revoked"}]
    assert env.cloudflare.certificates[first.cloudflare_id]["revoked_at"]
    assert not env.cloudflare.certificates[second.cloudflare_id]["revoked_at"]
    assert rotation.pending_revocations(env.ctx, env.spec.name) == []
    assert rotation.retire(env.ctx, actor="test") == []


def test_orphans_are_reported_in_a_dry_run_and_revoked_when_applied_across_pages(env):
    from shared.adapters.cloudflare import CloudflareOriginCA, make_key_and_csr

    s = env.ctx.settings
    # Pages of 5, the API's documented minimum: 1 kept + 6 orphans span two pages.
    env.ctx.overrides["origin_ca"] = CloudflareOriginCA(s.cloudflare_api_token, s.cloudflare_base_url, env.ctx.http,
                                                        page_size=5)
    kept = rotation.check(env.ctx, env.spec.name, actor="test", trigger="test")
    orphans = {env.ctx.origin_ca.create(make_key_and_csr(env.spec).csr_pem, env.spec.hostnames,
                                        env.spec.request_type, 7).id for _ in range(6)}
    assert rotation.sweep_orphans(env.ctx, actor="test", apply=False) == []  # younger than the grace period

    env.clock.advance(minutes=31)
    reported = rotation.sweep_orphans(env.ctx, actor="test", apply=False)
    assert {o["cloudflare_id"] for o in reported} == orphans and {o["outcome"] for o in reported} == {"reported"}
    assert not any(c["revoked_at"] for c in env.issued())

    lists = env.cloudflare.count("GET", "certificates$")
    revoked = rotation.sweep_orphans(env.ctx, actor="test", apply=True)
    assert env.cloudflare.count("GET", "certificates$") - lists >= 2  # both pages were read
    assert {o["cloudflare_id"] for o in revoked} == orphans and {o["outcome"] for o in revoked} == {"revoked"}
    assert [c["id"] for c in env.issued() if not c["revoked_at"]] == [kept.cloudflare_id]
    outcomes = [r.outcome for o in orphans for r in env.ctx.state.audit_trail(f"origin-certificate/"
                                                                              f"{env.ctx.platform.name}/{o}")]
    assert sorted(outcomes) == ["planned"] * 6 + ["succeeded"] * 6


def test_a_canary_private_key_never_appears_in_logs_errors_or_audit_records(env, caplog):
    seed_near_expiry(env)
    with caplog.at_level(logging.DEBUG):
        rotation.check(env.ctx, env.spec.name, actor="test", trigger="test")
        env.vault.inject(status=500, code="InternalError", message="boom", method="POST", path="/import", times=None)
        errors = []
        try:
            rotation.check(env.ctx, env.spec.name, actor="test", trigger="test", force=True, sleep=lambda s: None)
        except TemporaryError as error:
            errors.append(str(error))
    canary = secret_pem(env).split("-----END PRIVATE KEY-----")[0].split("-----BEGIN PRIVATE KEY-----")[1].strip()
    body = canary.replace("\n", "")
    audit = env.ctx.state.audit_trail(rotation.target(env.ctx, env.spec.name))
    rows = " ".join(f"{r.inputs} {r.message}" for r in audit)
    rows += " ".join(str(v) for row in env.ctx.storage.query(rotation.REVOCATIONS_TABLE, "PartitionKey ne ''")
                     for v in row.values())
    for text in (caplog.text, " ".join(errors), rows):
        assert canary[:40] not in text and body[:40] not in text
        assert "PRIVATE KEY-----" not in text
    assert errors and audit


def test_status_shows_version_serial_issuer_days_left_and_decision(env):
    seed_near_expiry(env)
    [before] = rotation.status(env.ctx)
    assert before["decision"] == "renew" and before["reason"] == "InsideRenewBefore" and before["days_left"] < 30
    rotation.check(env.ctx, env.spec.name, actor="test", trigger="test")
    [after] = rotation.status(env.ctx)
    assert after["reason"] == "UpToDate" and after["managed_by_us"] and "Origin" in after["issuer"]
    assert after["serial"] == env.versions()[-1]["tags"]["serial"]
    assert len(after["pending_revocations"]) == 1


def test_secret_serials_are_read_from_tls_crt():
    assert rotation.serial_in_secret(None) is None
    assert rotation.serial_in_secret({"data": {"tls.crt": base64.b64encode(b"nonsense").decode()}}) is None


def test_a_near_expiry_event_flows_from_the_vault_through_the_local_host_to_revocation(env, storage, sandbox_ca):
    """What `make run` shows: the vault emits, Event Grid delivers to the app, the app rotates, the cluster
    catches up, and the retirement timer revokes the superseded certificate after the grace period."""
    import time
    import types

    import requests

    import function_app
    from shared.local.host import LocalHost
    from shared.local.run import wire_certificates

    first = rotation.check(env.ctx, env.spec.name, actor="test", trigger="test")  # version A
    env.clock.advance(days=62)  # A (90 days) is now inside renew_before_days
    host = LocalHost(function_app.app, port=0, storage=storage, run_timers=False)
    url = host.start()
    sandbox = types.SimpleNamespace(platform=env.ctx.platform, keyvault=env.vault, cloudflare=env.cloudflare,
                                    kubernetes=env.kube)
    listeners = list(env.vault.on_new_version)
    try:
        wire_certificates(sandbox, env.ctx, url, sync_delay=0.2)
        answer = requests.post(f"{env.vault.base_url}/_sandbox/events", json={"name": env.spec.name},
                               verify=str(sandbox_ca.ca_path), timeout=5)
        assert answer.status_code == 201 and answer.json()["eventType"] == "Microsoft.KeyVault.CertificateNearExpiry"

        def until(predicate, timeout=30.0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if predicate():
                    return True
                time.sleep(0.1)
            return False

        assert until(lambda: len(env.vault.deliveries) >= 2), env.vault.deliveries
        assert env.vault.deliveries[:2] == [(200, "Microsoft.KeyVault.CertificateNearExpiry"),
                                            (200, "Microsoft.KeyVault.CertificateNewVersionCreated")]
        assert len(env.versions()) == 2 and len(env.issued()) == 2  # our own NewVersionCreated did not loop
        assert until(lambda: all(rotation.serial_in_secret(env.kube.object("v1", "secrets", ref.split("/")[1],
                                                                          ref.split("/")[0]))
                                 == env.versions()[-1]["tags"]["serial"] for ref in env.spec.synced_secrets))

        env.clock.advance(minutes=31)
        assert requests.post(f"{url}/admin/functions/certificate_retirement", json={}, timeout=5).status_code == 202
        assert until(lambda: bool(env.cloudflare.certificates[first.cloudflare_id]["revoked_at"]))
        assert [c["id"] for c in env.issued() if not c["revoked_at"]] == [env.versions()[-1]["tags"]["cloudflare-id"]]
    finally:
        host.stop()
        env.vault.subscriber_url = None
        env.vault.on_new_version[:] = listeners
        env.vault.deliveries.clear()
