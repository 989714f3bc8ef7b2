"""Fencing: a change decided on a read writes only if the target is unchanged since (ETag / If-Match).

A lease keeps our own actors apart; it cannot stop a human in the portal or an actor whose lease was
lost. With ``fenced`` the write is conditional on the ETag read, so it fails instead of overwriting.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from shared.adapters import HttpOptions
from shared.adapters.aks import AksNodePools
from shared.errors import ConflictError
from shared.local.sandbox.arm import ArmEmulator
from shared.services.actuation import fenced, mutate
from shared.state import StateStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def arm(sandbox_ca, dev_platform):
    emulator = ArmEmulator(dev_platform)
    emulator.start(sandbox_ca)
    yield emulator
    emulator.stop()


@pytest.fixture
def pools(arm, sandbox_ca, credential, dev_platform):
    arm.reset()
    return AksNodePools(credential, dev_platform, arm_endpoint=arm.base_url, poll_interval=0,
                        http=HttpOptions(max_retries=0, timeout=5, ca_bundle=str(sandbox_ca.ca_path)))


@pytest.fixture
def ctx(storage):
    class Ctx:
        state = StateStore(storage, clock=lambda: dt.datetime.now(dt.UTC))

    return Ctx


def test_a_fenced_scale_does_not_overwrite_a_pool_changed_after_it_was_read(ctx, pools, arm, dev_platform):
    gpu = dev_platform.gpu_pools[0]
    arm.set_pool(gpu.name, enableAutoScaling=False)

    def read():
        seen = pools.get(gpu.name)
        arm.set_pool(gpu.name, count=gpu.min_count + 1)  # a human scales it between our read and our write
        return seen

    change = fenced(read, lambda pool: pool.etag,
                    lambda pool, etag: pools.scale(gpu.name, count=pool.count + 2, expected_etag=etag))
    target = f"nodepool/dev-uaenorth/{gpu.name}-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ConflictError):
        mutate(ctx, actor="gpu-scaler", action="scale", target=target, reason="QueueDepth", inputs={}, change=change)

    assert pools.get(gpu.name).count == gpu.min_count + 1
    [record] = ctx.state.audit_trail(target)
    assert record.outcome == "failed" and "PreconditionFailed" in record.message


def test_a_fenced_scale_goes_through_when_nothing_changed_since_the_read(ctx, pools, arm, dev_platform):
    gpu = dev_platform.gpu_pools[0]
    arm.set_pool(gpu.name, enableAutoScaling=False)
    change = fenced(lambda: pools.get(gpu.name), lambda pool: pool.etag,
                    lambda pool, etag: pools.scale(gpu.name, count=pool.count + 1, expected_etag=etag))
    scaled = mutate(ctx, actor="gpu-scaler", action="scale", target=f"nodepool/dev-uaenorth/{uuid.uuid4().hex[:6]}",
                    reason="QueueDepth", inputs={}, change=change)
    assert scaled.count == pools.get(gpu.name).count
