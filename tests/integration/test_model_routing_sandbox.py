"""The proactive fallback end to end: the Kubernetes emulator (with Flux's apply simulated) holds the inference
gateway's Backends as gitops declares them, Azurite holds the GPU-scaling rows, the audit and the routing state;
model_routing switches a model's traffic through the real kubernetes client, and a Flux reconcile leaves the
switch alone while it reverts a hand edit of a Backend Flux owns."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from _fixtures_saas import sandbox_context

from shared import cli
from shared.services import model_routing as mr
from shared.services.scaling.tick import STATE_TABLE as SCALING_TABLE

pytestmark = pytest.mark.integration
KS = ("kustomize.toolkit.fluxcd.io/v1", "kustomizations")
T0 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def apps_kustomization(kube):
    (name,) = [n for (ns, n) in kube.objects[KS] if n.endswith("apps")]
    return name


@pytest.fixture
def ctx(kube, azurite, dev_platform):
    clock = {"now": T0}
    context = sandbox_context(dev_platform, kube, PLATFORM_STORAGE_CONNECTION_STRING=azurite.connection_string)
    context.clock = lambda: clock["now"]
    context.tick_to = lambda at: clock.__setitem__("now", at)
    for pool in ("h100", "mi300x"):
        context.storage.delete(SCALING_TABLE, dev_platform.name, pool)
    for model in ("platform-llm", "platform-llm-small"):
        context.storage.delete(mr.STATE_TABLE, dev_platform.name, model)
    return context


def reconcile(ctx, kube, name, token):
    ctx.cluster.request_reconcile(*KS, name, "flux-system", token)
    assert kube.object(*KS, name, "flux-system")["status"]["lastHandledReconcileAt"] == token


def scaling_row(ctx, pool, at, *, waiting=0, quota=False):
    entity = {"PartitionKey": ctx.platform.name, "RowKey": pool,
              "policy": json.dumps({"at": at.timestamp(), "load": 4 + waiting, "busy": 4, "done_rate": 1.0}),
              "fallback_to": "mi300x" if quota else ""}
    ctx.storage.delete(SCALING_TABLE, ctx.platform.name, pool)
    ctx.storage.insert(SCALING_TABLE, entity)


def active(kube):
    return kube.object(*mr.BACKENDS, "platform-llm-active", "model-serving")


def test_a_quota_switch_survives_flux_and_a_recovery_switches_back(ctx, kube, apps_kustomization, capsys):
    # The emulator is seeded with what the apps Kustomization declares: the active Backends at their first entry.
    assert active(kube)["spec"]["endpoints"][0]["fqdn"]["hostname"].startswith("vllm-h100.")

    scaling_row(ctx, "h100", T0, quota=True)
    scaling_row(ctx, "mi300x", T0)
    plans = {p.model: p for p in mr.tick(ctx, now=T0)}
    assert (plans["platform-llm"].target, plans["platform-llm"].reason) == ("vllm-mi300x", mr.QUOTA_EXHAUSTED)
    assert not plans["platform-llm-small"].switch
    backend = active(kube)
    assert backend["spec"]["endpoints"][0]["fqdn"] == {"hostname": "vllm-mi300x.model-serving.svc.cluster.local",
                                                       "port": 8000}
    assert backend["metadata"]["annotations"][mr.ROUTING_REASON] == mr.QUOTA_EXHAUSTED
    (record,) = ctx.state.audit_trail("modelrouting/dev-uaenorth/platform-llm", since=T0 - dt.timedelta(hours=1))
    assert (record.outcome, record.reason) == ("succeeded", mr.QUOTA_EXHAUSTED)

    # A hand edit of a Backend Flux owns is reverted by the next reconcile; the switch is not.
    kube.put_object({**kube.object(*mr.BACKENDS, "vllm-h100", "model-serving"),
                     "spec": {"endpoints": [{"fqdn": {"hostname": "elsewhere", "port": 1}}]}}, "backends")
    reconcile(ctx, kube, apps_kustomization, "second")
    assert kube.object(*mr.BACKENDS, "vllm-h100", "model-serving")["spec"]["endpoints"][0]["fqdn"]["port"] == 8000
    assert active(kube)["spec"]["endpoints"][0]["fqdn"]["hostname"].startswith("vllm-mi300x.")

    ctx.tick_to(T0 + dt.timedelta(minutes=1))
    assert cli.COMMANDS["models"].run(ctx, _args("status"))[1]["models"][0]["routed_to"] == "vllm-mi300x"

    # Quota back and the queue short: back to the H100 pool only after recover_seconds (900 s in platform.yaml).
    t1 = T0 + dt.timedelta(minutes=2)
    scaling_row(ctx, "h100", t1)
    scaling_row(ctx, "mi300x", t1)
    assert mr.tick(ctx, now=t1)[0].reason == mr.HOLDING
    t2 = t1 + dt.timedelta(seconds=900)
    scaling_row(ctx, "h100", t2)
    scaling_row(ctx, "mi300x", t2)
    ctx.tick_to(t2)
    code, data, text = cli.COMMANDS["models"].run(ctx, _args("route"))
    assert code == 0 and data[0]["reason"] == mr.RECOVERED and data[0]["target"] == "vllm-h100", text
    assert active(kube)["spec"]["endpoints"][0]["fqdn"]["hostname"].startswith("vllm-h100.")
    code, data, text = cli.COMMANDS["models"].run(ctx, _args("status"))
    assert data["models"][0]["reason"] == mr.RECOVERED and "platform-llm: -> vllm-h100 (h100)" in text


def _args(action, **kw):
    import argparse

    return argparse.Namespace(models_action=action, dry_run=False, json=False, **kw)
