"""The GitOps repository adapter through the real ``python-gitlab`` SDK against the GitLab emulator."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from _fixtures_saas import APP_ROOT, closed_port_url, imported_modules_after, sandbox_context

from shared.adapters import HttpOptions
from shared.adapters.gitlab import Branch, FileAction, GitLabRepo, MergeRequest
from shared.errors import ConflictError, NotFoundError, PermanentError, TemporaryError
from shared.local.sandbox.base import Fault
from shared.local.sandbox.gitlab import GitLabEmulator

pytestmark = pytest.mark.integration

# A file the repository really holds (the project is seeded from this checkout's gitops/ and infra/).
REPLICAS = "gitops/apps/dev-uaenorth/vllm-deployment.yaml"


@pytest.fixture(scope="module")
def gitlab(dev_platform):
    emulator = GitLabEmulator(dev_platform)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(autouse=True)
def fresh(gitlab):
    """The module's emulator, back at the seeded project (history, MRs, faults, request log) for every test."""
    gitlab.reset()


@pytest.fixture(scope="module")
def repo(gitlab, dev_platform):
    return sandbox_context(dev_platform, gitlab).git


def direct(gitlab, dev_platform, token=None, url=None) -> GitLabRepo:
    return GitLabRepo(url or gitlab.base_url, token or gitlab.token, dev_platform.gitlab.project,
                      HttpOptions(max_retries=0, timeout=2))


def unique(prefix: str) -> str:
    return f"platform-bot/{prefix}/{time.monotonic_ns()}"


# -- happy paths -----------------------------------------------------------------------------


def test_build_from_the_context_reaches_the_project_by_its_url_encoded_path(repo, gitlab):
    assert isinstance(repo, GitLabRepo)
    assert repo.probe().startswith("GitLab project platform/platform-core (default branch main)")
    assert gitlab.count("GET", r"/projects/platform/platform-core$") >= 1


def test_files_are_read_at_a_branch_or_a_commit_and_a_missing_file_is_none(repo, gitlab, dev_platform):
    path = f"{dev_platform.gitlab.gitops_path}/kustomization.yaml"
    text = repo.read_file(path, "main")
    assert text == (APP_ROOT / path).read_text()
    assert repo.read_file(path, gitlab.head("main")) == text
    assert repo.read_file(f"{dev_platform.gitlab.gitops_path}/missing.yaml", "main") is None


def test_branch_returns_its_head_or_none(repo, gitlab):
    assert repo.branch("main") == Branch("main", gitlab.head("main"), protected=True)
    assert repo.branch("platform-bot/no-such-branch") is None


def test_a_commit_creates_the_branch_from_the_start_branch_and_stacks_on_it_afterwards(repo, gitlab):
    branch = unique("drift")
    base = gitlab.head("main")

    first = repo.commit(branch, "Scale vLLM to 2", [FileAction("update", REPLICAS, "replicas: 2\n")],
                        start_branch="main")
    assert len(first.id) == 40 and first.branch == branch
    assert gitlab.commits[first.id].parent_ids == [base]
    assert repo.read_file(REPLICAS, branch) == "replicas: 2\n"
    assert gitlab.head("main") == base  # the base is untouched

    second = repo.commit(branch, "Add a note", [FileAction("create", "gitops/NOTES.md", "bm90ZQ==", encoding="base64")],
                         start_branch="main")
    assert gitlab.commits[second.id].parent_ids == [first.id]
    assert gitlab.file(branch, "gitops/NOTES.md") == "note"


def test_a_stale_last_commit_id_is_refused_and_a_fresh_one_accepted(repo, gitlab):
    read_at = gitlab.head("main")
    gitlab.push("main", {REPLICAS: "replicas: 5\n"}, "A human scales vLLM")

    with pytest.raises(ConflictError, match="changed since you started editing"):
        repo.commit(unique("stale"), "Scale", [FileAction("update", REPLICAS, "replicas: 3\n")],
                    start_branch="main", last_commit_id=read_at)

    fresh = repo.commit(unique("fresh"), "Scale", [FileAction("update", REPLICAS, "replicas: 3\n")],
                        start_branch="main", last_commit_id=gitlab.head("main"))
    assert len(fresh.id) == 40


def test_the_merge_request_is_created_once_then_updated_in_place(repo, gitlab):
    branch = unique("mr")
    repo.commit(branch, "Fix drift", [FileAction("update", REPLICAS, "replicas: 4\n")], start_branch="main")
    posts, puts = gitlab.count("POST", "merge_requests$"), gitlab.count("PUT", "merge_requests/")

    first = repo.open_or_update_merge_request(branch, "main", "Fix drift", "one", ["drift"])
    second = repo.open_or_update_merge_request(branch, "main", "Fix drift (again)", "two", ["drift", "bot"])
    third = repo.open_or_update_merge_request(branch, "main", "Fix drift (again)", "two", ["bot", "drift"])

    assert isinstance(first, MergeRequest) and first.state == "opened"
    assert second.iid == third.iid == first.iid
    assert (second.title, second.description, set(second.labels)) == ("Fix drift (again)", "two", {"drift", "bot"})
    assert gitlab.count("POST", "merge_requests$") - posts == 1
    assert gitlab.count("PUT", "merge_requests/") - puts == 1  # nothing to change the third time
    assert repo.find_open_merge_request(branch, "main") == third


def test_a_closed_merge_request_is_not_reused(repo, gitlab, dev_platform):
    branch = unique("closed")
    repo.commit(branch, "Fix", [FileAction("update", REPLICAS, "replicas: 6\n")], start_branch="main")
    mr = repo.open_or_update_merge_request(branch, "main", "Fix", "", [])
    project = repo._proj()  # the real SDK object: close the MR as a human would in the UI
    project.mergerequests.update(mr.iid, {"state_event": "close"})

    assert repo.find_open_merge_request(branch, "main") is None
    assert repo.open_or_update_merge_request(branch, "main", "Fix", "", []).iid != mr.iid


def test_a_409_race_on_create_ends_with_one_merge_request_updated_by_the_loser(repo, gitlab):
    branch = unique("race")
    repo.commit(branch, "Fix", [FileAction("update", REPLICAS, "replicas: 7\n")], start_branch="main")
    # Hold the first creator's POST so that a second worker creates the MR in between.
    hold = gitlab.inject(Fault(status=None, method="POST", path="merge_requests$", delay=0.6, times=1))
    results: dict[str, object] = {}
    slow = threading.Thread(target=lambda: results.update(
        slow=repo.open_or_update_merge_request(branch, "main", "From the slow worker", "", ["drift"])))
    slow.start()
    deadline = time.monotonic() + 3
    while hold.hits == 0 and time.monotonic() < deadline:  # the slow worker's POST is now being held
        time.sleep(0.005)
    fast = repo.open_or_update_merge_request(branch, "main", "From the fast worker", "", ["drift"])
    slow.join(5)

    assert results["slow"].iid == fast.iid
    assert results["slow"].title == "From the slow worker"
    open_mrs = [m for m in gitlab.merge_requests.values() if m["source_branch"] == branch and m["state"] == "opened"]
    assert len(open_mrs) == 1


def test_merge_request_lists_carry_gitlab_pagination_headers(repo, gitlab):
    for i in range(3):
        branch = unique(f"page{i}")
        repo.commit(branch, "Fix", [FileAction("update", REPLICAS, f"replicas: {i}\n")], start_branch="main")
        repo.open_or_update_merge_request(branch, "main", f"MR {i}", "", ["paging"])
    url = f"{gitlab.base_url}/api/v4/projects/platform%2Fplatform-core/merge_requests"
    answer = requests.get(url, params={"labels": "paging", "per_page": 2}, headers={"PRIVATE-TOKEN": gitlab.token},
                          timeout=2)
    assert answer.headers["X-Total"] == "3" and answer.headers["X-Page"] == "1"
    assert answer.headers["X-Per-Page"] == "2" and answer.headers["X-Next-Page"] == "2"
    assert 'rel="next"' in answer.headers["Link"] and len(answer.json()) == 2
    # And the SDK follows them.
    listed = repo._proj().mergerequests.list(labels="paging", per_page=2, get_all=True)
    assert len(listed) == 3


# -- errors mapped at the seam ---------------------------------------------------------------------


def test_a_bad_token_is_permanent_and_its_value_never_appears_in_the_error(gitlab, dev_platform):
    wrong = "wrong-gitlab-token-5b8e1f2a9c"
    with pytest.raises(PermanentError) as err:
        direct(gitlab, dev_platform, token=wrong).branch("main")
    assert "401" in str(err.value) and wrong not in str(err.value)
    assert "GITLAB_TOKEN" in err.value.remediation


def test_an_unknown_project_is_not_found(gitlab):
    with pytest.raises(NotFoundError, match="Project Not Found"):
        GitLabRepo(gitlab.base_url, gitlab.token, "platform/nope", HttpOptions(max_retries=0, timeout=2)).probe()


def test_throttling_is_not_slept_through_by_the_sdk_and_carries_retry_after(repo, gitlab):
    gitlab.inject(Fault(status=429, method="GET", code="message", message="Retry later", retry_after=9))
    before = gitlab.count("GET", "branches")
    started = time.monotonic()
    with pytest.raises(TemporaryError) as err:
        repo.branch("main")
    assert err.value.retry_after == 9
    assert time.monotonic() - started < 2 and gitlab.count("GET", "branches") - before == 1


def test_a_server_error_is_temporary_and_not_retried(repo, gitlab):
    gitlab.inject(Fault(status=502, method="POST", path="commits$", code="message", message="502 Bad Gateway"))
    before = gitlab.count("POST", "commits$")
    with pytest.raises(TemporaryError):
        repo.commit(unique("5xx"), "Fix", [FileAction("update", REPLICAS, "x\n")], start_branch="main")
    assert gitlab.count("POST", "commits$") - before == 1


def test_the_token_is_redacted_even_if_the_far_side_echoes_it(repo, gitlab):
    gitlab.inject(Fault(status=400, method="GET", code="message", message=f"bad token {gitlab.token}"))
    with pytest.raises(PermanentError) as err:
        repo.read_file("README.md", "main")
    assert gitlab.token not in str(err.value)


def test_an_unreachable_gitlab_is_a_temporary_error(dev_platform, gitlab):
    with pytest.raises(TemporaryError, match="cannot reach"):
        direct(gitlab, dev_platform, url=closed_port_url()).branch("main")


def test_without_a_token_the_adapter_builds_but_every_call_says_what_to_set(gitlab, dev_platform):
    ctx = sandbox_context(dev_platform, gitlab, GITLAB_TOKEN="")
    with pytest.raises(PermanentError, match="GITLAB_TOKEN is not set"):
        ctx.git.branch("main")


def test_importing_the_adapter_does_not_import_the_sdk():
    loaded = imported_modules_after("shared.adapters.gitlab")
    assert "gitlab" not in loaded and "requests" not in loaded
