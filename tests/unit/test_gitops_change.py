"""gitops_change.plan_change (pure): one branch per environment and topic, one fresh commit, hands off
a human's branch."""

from __future__ import annotations

import dataclasses

import pytest

from shared.adapters.gitlab import CommitInfo
from shared.services import gitops_change as gc

BOT = "platform-bot@noreply.gitlab.example.com"
BASE = "b" * 40
PATH = "infra/envs/dev-uaenorth/platform.yaml"
OLD, NEW = "max_count: 4\n", "max_count: 8\n"


def request(**changes) -> gc.ChangeRequest:
    base = gc.ChangeRequest(env="dev-uaenorth", topic="drift", title="adopt", summary="why",
                            changes=(gc.FileChange(PATH, lambda text: NEW),),
                            columns=("resource", "git", "live"), rows=(("nodepool/h100", "4", "8"),))
    return dataclasses.replace(base, **changes)


def ours(parent: str = BASE) -> CommitInfo:
    return CommitInfo("c" * 40, gc.BOT_NAME, BOT, (parent,))


# behaviour -> (snapshot, expected reason, commit?, merge request?)
CASES = {
    "git already says it: nothing to propose": (
        gc.BranchSnapshot(BASE, {PATH: NEW}), gc.NO_CHANGE, False, False),
    "a first proposal makes the branch and the merge request": (
        gc.BranchSnapshot(BASE, {PATH: OLD}), gc.NEW_BRANCH, True, True),
    "our branch with the same change on the current base is left as is": (
        gc.BranchSnapshot(BASE, {PATH: OLD}, True, (ours(),), {PATH: NEW}), gc.UP_TO_DATE, False, True),
    "our branch on an older base gets one fresh commit": (
        gc.BranchSnapshot(BASE, {PATH: OLD}, True, (ours("a" * 40),), {PATH: NEW}), gc.REFRESHED, True, True),
    "our branch with another change gets one fresh commit": (
        gc.BranchSnapshot(BASE, {PATH: OLD}, True, (ours(),), {PATH: "max_count: 9\n"}), gc.REFRESHED, True, True),
    "a branch a human committed to is left alone": (
        gc.BranchSnapshot(BASE, {PATH: OLD}, True, (ours(), CommitInfo("d" * 40, "Jane", "jane@example.com")),
                          {PATH: NEW}), gc.HUMAN_ON_BRANCH, False, False),
}


@pytest.mark.parametrize("behaviour", list(CASES))
def test_plan(behaviour):
    snapshot, reason, commit, merge_request = CASES[behaviour]
    plan = gc.plan_change(request(), snapshot, bot=BOT)
    assert (plan.reason, plan.commit, plan.merge_request) == (reason, commit, merge_request), plan.message
    assert plan.branch == "platform-bot/drift/dev-uaenorth"


def test_the_description_holds_the_table_and_is_the_same_for_the_same_proposal():
    one = gc.plan_change(request(), gc.BranchSnapshot(BASE, {PATH: OLD}), bot=BOT)
    two = gc.plan_change(request(), gc.BranchSnapshot(BASE, {PATH: OLD}), bot=BOT)
    assert one.description == two.description
    assert "| nodepool/h100 | 4 | 8 |" in one.description


@pytest.mark.parametrize("behaviour, changes, review, auto_merge", [
    ("a safe dev change asked to auto-merge may", {"auto_merge": True}, False, True),
    ("a destructive change never auto-merges and needs review", {"auto_merge": True, "destructive": True}, True,
     False),
    ("anything for production never auto-merges and needs review", {"auto_merge": True, "env": "prd-uaenorth"},
     True, False),
])
def test_labels(behaviour, changes, review, auto_merge):
    labels = gc.labels_for(request(**changes))
    assert (gc.LABEL_REVIEW in labels, gc.LABEL_AUTO_MERGE in labels) == (review, auto_merge)
    assert {gc.LABEL_BOT, "topic::drift"} <= set(labels)
