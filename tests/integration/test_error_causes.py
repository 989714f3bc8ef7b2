"""Adapters keep the cause: a mapped SDK error chains the SDK's exception, and an unexpected exception
(our own bug) propagates as itself, with its traceback, instead of being re-raised ``from None``."""

from __future__ import annotations

import traceback

import pytest

from shared.adapters import HttpOptions
from shared.adapters.cloudflare import CloudflareOriginCA, make_key_and_csr
from shared.adapters.gitlab import FileAction, GitLabRepo
from shared.errors import NotFoundError, PermanentError
from shared.local.sandbox.cloudflare import CloudflareEmulator
from shared.local.sandbox.gitlab import GitLabEmulator

pytestmark = pytest.mark.integration


class NotSerialisable:
    """What a caller's bug hands an adapter: a value no SDK can put in a request body."""


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


def origin_ca(cloudflare):
    return CloudflareOriginCA(cloudflare.token, cloudflare.base_url + "/client/v4",
                              HttpOptions(max_retries=0, timeout=2))


def test_a_mapped_cloudflare_error_chains_the_sdk_exception(cloudflare):
    import cloudflare as sdk

    with pytest.raises(NotFoundError) as caught:
        origin_ca(cloudflare).revoke("1234567890")
    assert isinstance(caught.value.__cause__, sdk.NotFoundError)


def test_our_own_bug_in_a_cloudflare_call_propagates_as_itself_with_its_traceback(cloudflare, dev_platform):
    spec = dev_platform.certificates[0]
    with pytest.raises(Exception) as caught:
        origin_ca(cloudflare).create(make_key_and_csr(spec).csr_pem, [NotSerialisable()], spec.request_type, 90)
    assert not isinstance(caught.value, PermanentError)
    assert "NotSerialisable" in "".join(traceback.format_exception(caught.value))


def test_a_mapped_gitlab_error_chains_the_sdk_exception(gitlab, dev_platform):
    import gitlab as sdk

    repo = GitLabRepo(gitlab.base_url, gitlab.token, "platform/nope", HttpOptions(max_retries=0, timeout=2))
    with pytest.raises(NotFoundError) as caught:
        repo.probe()
    assert isinstance(caught.value.__cause__, sdk.exceptions.GitlabError)


def test_our_own_bug_in_a_gitlab_call_propagates_as_itself(gitlab, dev_platform):
    repo = GitLabRepo(gitlab.base_url, gitlab.token, dev_platform.gitlab.project, HttpOptions(max_retries=0, timeout=2))
    with pytest.raises(TypeError) as caught:
        repo.commit("platform-bot/bug", "m", [FileAction("create", "gitops/x.yaml", NotSerialisable())],
                    start_branch="main")
    assert caught.value.__traceback__ is not None


def test_a_mapped_storage_error_chains_the_sdk_exception(storage):
    from azure.core.exceptions import AzureError

    with pytest.raises(PermanentError) as caught:
        storage.queue_depth("x")  # an invalid queue name
    assert isinstance(caught.value.__cause__, AzureError)


def test_a_mapped_kubernetes_error_chains_the_client_exception(dev_platform):
    from kubernetes.client.exceptions import ApiException

    from shared.adapters.kubernetes import KubernetesCluster
    from shared.credentials import StaticTokenCredential
    from shared.local.sandbox.kubernetes import KubernetesEmulator

    emulator = KubernetesEmulator(dev_platform)
    emulator.start()
    try:
        cluster = KubernetesCluster(emulator.base_url, StaticTokenCredential(), HttpOptions(max_retries=0, timeout=2))
        with pytest.raises(NotFoundError) as caught:
            cluster.patch_merge("v1", "namespaces", "no-such-namespace", {"metadata": {"labels": {"a": "b"}}})
        assert isinstance(caught.value.__cause__, ApiException)
    finally:
        emulator.stop()
