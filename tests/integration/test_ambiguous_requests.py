"""Non-idempotent requests whose answer is lost are never sent twice: the first attempt is found and adopted.

The emulators' ``Fault(after=True)`` applies the request and only then delays or fails the answer, which is
what a slow server behind a client timeout, or a proxy's 502 after the backend committed, look like.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from _fixtures_saas import closed_port_url
from cryptography import x509

from shared.adapters import HttpOptions
from shared.adapters.cloudflare import CloudflareOriginCA, create_or_adopt, make_key_and_csr
from shared.adapters.gitlab import FileAction, GitLabRepo
from shared.adapters.keyvault import KeyVaultCertificates
from shared.errors import OutcomeUnknownError, TemporaryError
from shared.local.sandbox.base import Fault
from shared.local.sandbox.cloudflare import CloudflareEmulator
from shared.local.sandbox.gitlab import GitLabEmulator
from shared.local.sandbox.keyvault import KeyVaultEmulator
from shared.services.actuation import mutate
from shared.state import StateStore

pytestmark = pytest.mark.integration


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def cloudflare(dev_platform):
    emulator = CloudflareEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def gitlab(dev_platform):
    emulator = GitLabEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def vault(sandbox_ca, dev_platform):
    emulator = KeyVaultEmulator(dev_platform)
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture(autouse=True)
def no_faults(cloudflare, gitlab, vault):
    for emulator in (cloudflare, gitlab, vault):
        emulator.clear_faults()
    yield
    for emulator in (cloudflare, gitlab, vault):
        emulator.clear_faults()


@pytest.fixture
def ctx(storage):
    class Ctx:
        state = StateStore(storage, clock=now)

    return Ctx


@pytest.fixture(scope="module")
def spec(dev_platform):
    return dev_platform.certificates[0]


def origin_ca(cloudflare, timeout=2.0, base_url=None) -> CloudflareOriginCA:
    return CloudflareOriginCA(cloudflare.token, base_url or cloudflare.base_url + "/client/v4",
                              HttpOptions(max_retries=2, timeout=timeout))


def issued_with_key(cloudflare, csr_pem):
    with cloudflare.lock:
        return [c for c in cloudflare.certificates.values() if c.get("csr") == csr_pem]


def settle(seconds):
    """Wait for a delayed answer to finish being sent, so the emulator's request log is complete."""
    time.sleep(seconds)


# -- Cloudflare Origin CA -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("lost_how", "fault", "timeout"),
    [
        ("the server is slower than the client's timeout", Fault(status=None, method="POST", path="/certificates$",
                                                                 delay=2.0, after=True), 1.0),
        ("a proxy answers 502 after the certificate was issued", Fault(status=502, method="POST",
                                                                        path="/certificates$", after=True), 2.0),
    ],
)
def test_a_create_whose_answer_is_lost_issues_one_certificate_and_the_caller_adopts_it(
        cloudflare, ctx, spec, lost_how, fault, timeout):
    keys = make_key_and_csr(spec)
    adapter = origin_ca(cloudflare, timeout=timeout)
    posts = cloudflare.count("POST", r"/certificates$")
    cloudflare.inject(fault)
    since = now()

    adopted = mutate(ctx, actor="cert-rotation", action="issue", target=f"certificate/{uuid.uuid4().hex[:8]}",
                     reason="NearExpiry", inputs={}, sleep=lambda s: None,
                     change=lambda: create_or_adopt(adapter, zone_id=spec.zone_id, csr_pem=keys.csr_pem,
                                                    hostnames=spec.hostnames, request_type=spec.request_type,
                                                    validity_days=90, since=since))

    settle(fault.delay)
    [issued] = issued_with_key(cloudflare, keys.csr_pem)  # exactly one certificate, not two
    assert adopted.id == str(issued["id"]), lost_how
    assert cloudflare.count("POST", r"/certificates$") - posts == 1, lost_how


def test_create_says_the_outcome_is_unknown_and_retry_does_not_send_it_again(cloudflare, ctx, spec):
    keys = make_key_and_csr(spec)
    adapter = origin_ca(cloudflare)
    posts = cloudflare.count("POST", r"/certificates$")
    cloudflare.inject(Fault(status=503, method="POST", path="/certificates$", after=True))
    target = f"certificate/{uuid.uuid4().hex[:8]}"

    with pytest.raises(OutcomeUnknownError):
        mutate(ctx, actor="cert-rotation", action="issue", target=target, reason="NearExpiry", inputs={},
               sleep=lambda s: None,
               change=lambda: adapter.create(keys.csr_pem, spec.hostnames, spec.request_type, 90))

    assert cloudflare.count("POST", r"/certificates$") - posts == 1
    assert len(issued_with_key(cloudflare, keys.csr_pem)) == 1
    [record] = ctx.state.audit_trail(target)
    assert record.outcome == "deferred" and record.message.startswith("OutcomeUnknown")


def test_a_create_that_never_reached_the_server_is_a_plain_temporary_error_safe_to_retry(spec):
    keys = make_key_and_csr(spec)
    adapter = CloudflareOriginCA("token", closed_port_url() + "/client/v4", HttpOptions(max_retries=0, timeout=2))
    with pytest.raises(TemporaryError) as caught:
        adapter.create(keys.csr_pem, spec.hostnames, spec.request_type, 90)
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_find_issued_matches_hostnames_the_csr_key_and_the_time_and_reads_every_page(cloudflare, spec):
    adapter = CloudflareOriginCA(cloudflare.token, cloudflare.base_url + "/client/v4",
                                 HttpOptions(max_retries=0, timeout=2), page_size=5)  # Cloudflare's minimum
    ours, other = make_key_and_csr(spec), make_key_and_csr(spec)
    since = now()
    mine = adapter.create(ours.csr_pem, spec.hostnames, spec.request_type, 90)
    for _ in range(5):  # same hostnames, other keys, issued after ours: push ours off the first page
        adapter.create(other.csr_pem, spec.hostnames, spec.request_type, 90)

    assert adapter.find_issued(spec.zone_id, spec.hostnames, ours.csr_pem, since).id == mine.id
    assert adapter.find_issued(spec.zone_id, spec.hostnames[:1], ours.csr_pem, since) is None \
        or len(spec.hostnames) == 1
    assert adapter.find_issued(spec.zone_id, spec.hostnames, ours.csr_pem, since + dt.timedelta(hours=1)) is None
    assert adapter.find_issued(spec.zone_id, spec.hostnames, make_key_and_csr(spec).csr_pem, since) is None


# -- GitLab commits and merge requests --------------------------------------------------------------

def repo(gitlab, dev_platform, timeout=2.0) -> GitLabRepo:
    return GitLabRepo(gitlab.base_url, gitlab.token, dev_platform.gitlab.project,
                      HttpOptions(max_retries=0, timeout=timeout))


@pytest.mark.parametrize(
    ("lost_how", "fault", "timeout"),
    [
        ("the answer comes after the client's timeout", Fault(status=None, method="POST", path="/commits$",
                                                              delay=2.0, after=True), 1.0),
        ("a 502 after the commit was made", Fault(status=502, method="POST", path="/commits$", after=True), 2.0),
    ],
)
def test_a_commit_whose_answer_is_lost_is_found_on_the_branch_and_adopted_not_made_twice(
        gitlab, dev_platform, lost_how, fault, timeout):
    git = repo(gitlab, dev_platform, timeout)
    branch = f"platform-bot/ambiguous/{uuid.uuid4().hex[:8]}"
    message = f"Scale vLLM replicas ({lost_how})"
    path = f"gitops/apps/dev-uaenorth/ambiguous-{uuid.uuid4().hex[:8]}.yaml"
    gitlab.inject(fault)

    commit = git.commit(branch, message, [FileAction("create", path, "replicas: 2\n")], start_branch="main")

    settle(fault.delay)
    head = git.branch(branch)
    assert head is not None and commit.id == head.commit_id, lost_how
    assert gitlab.count("POST", r"/commits$") >= 1
    assert git.read_file(path, branch) == "replicas: 2\n"
    # One commit on top of main, not two (a re-sent "create" would have failed or doubled).
    main_head = git.branch("main").commit_id
    with gitlab.lock:
        assert list(gitlab.commits[commit.id].parent_ids) == [main_head]


def test_a_commit_that_was_not_applied_stays_unknown_rather_than_being_adopted_wrongly(gitlab, dev_platform):
    git = repo(gitlab, dev_platform)
    branch = f"platform-bot/ambiguous/{uuid.uuid4().hex[:8]}"
    git.commit(branch, "first", [FileAction("create", f"gitops/{uuid.uuid4().hex}.yaml", "a: 1\n")],
               start_branch="main")
    gitlab.inject(Fault(status=502, method="POST", path="/commits$"))  # refused before applying
    with pytest.raises(OutcomeUnknownError):
        git.commit(branch, "second", [FileAction("create", f"gitops/{uuid.uuid4().hex}.yaml", "b: 2\n")])


def test_a_merge_request_whose_answer_is_lost_is_adopted_and_not_opened_twice(gitlab, dev_platform):
    git = repo(gitlab, dev_platform, timeout=1.0)
    branch = f"platform-bot/ambiguous/{uuid.uuid4().hex[:8]}"
    git.commit(branch, "change", [FileAction("create", f"gitops/{uuid.uuid4().hex}.yaml", "a: 1\n")],
               start_branch="main")
    posts = gitlab.count("POST", r"/merge_requests$")
    gitlab.inject(Fault(status=None, method="POST", path="/merge_requests$", delay=2.0, after=True))

    mr = git.open_or_update_merge_request(branch, "main", "Scale vLLM", "why", ["platform-bot"])

    settle(2.0)
    with gitlab.lock:
        opened = [m for m in gitlab.merge_requests.values()
                  if m["source_branch"] == branch and m["state"] == "opened"]
    assert [m["iid"] for m in opened] == [mr.iid]
    assert gitlab.count("POST", r"/merge_requests$") - posts == 1


# -- Key Vault imports -------------------------------------------------------------------------------

def test_an_import_whose_answer_fails_creates_one_version_which_is_adopted(vault, sandbox_ca, credential, spec):
    # max_retries=2: azure-core would re-send this POST by itself on a 500; the import must not let it.
    store = KeyVaultCertificates(vault.base_url, credential,
                                 http=HttpOptions(max_retries=2, timeout=2, ca_bundle=str(sandbox_ca.ca_path)))
    start = now().replace(microsecond=0)
    key, chain, _ = vault.origin_ca.issue(spec.hostnames, request_type=spec.request_type, not_before=start,
                                          not_after=start + dt.timedelta(days=90))
    before, posts = len(store.versions(spec.name)), vault.count("POST", r"/import$")
    vault.inject(Fault(status=500, method="POST", path="/import$", after=True, times=None))

    imported = store.import_pem(spec.name, key + chain, {"cloudflare-id": "42"})

    assert len(store.versions(spec.name)) == before + 1
    serial = format(x509.load_pem_x509_certificates(chain)[0].serial_number, "x")
    assert imported.serial == serial and imported.tags["cloudflare-id"] == "42"
    assert vault.count("POST", r"/import$") - posts == 1
