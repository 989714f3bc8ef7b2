"""Fixtures shared by the whole suite: the sandbox CA, a static credential, the platform facts."""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from shared.credentials import StaticTokenCredential
from shared.local.sandbox.base import SandboxCA
from shared.platform import load_environment

# The modules that take longest (measured with `--durations`; README "Tests"), run first. `make test` hands whole
# modules to pytest-xdist workers in collection order (--dist loadfile --no-loadscope-reorder): a long module
# picked up last would keep one worker busy while the others idle. The rest follow, most tests first.
LONGEST_FIRST = (  # from `--durations=0` on 3 workers after the 409 tick fix (checkov ~70 s, then 20-40 s each)
    "tests/infra/test_infra_checkov.py",
    "tests/integration/test_actuation.py",
    "tests/integration/test_emulators.py",
    "tests/integration/test_chatops.py",
    "tests/integration/test_certificate_rotation.py",
    "tests/integration/test_make_run.py",
    "tests/integration/test_drift_gitops.py",
    "tests/integration/test_gpu_bounds.py",
    "tests/integration/test_gpu_scaling.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Orders modules longest first (the order within a module is kept). Deterministic: every xdist worker must
    collect the same order."""
    def module(item: pytest.Item) -> str:
        return item.path.relative_to(config.rootpath).as_posix()

    tests_per_module = Counter(module(item) for item in items)

    def rank(name: str) -> tuple[int, int, str]:
        first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        return first, -tests_per_module[name], name

    position = {name: i for i, name in enumerate(sorted(tests_per_module, key=rank))}
    items.sort(key=lambda item: position[module(item)])


@pytest.fixture(scope="session")
def once_per_run(tmp_path_factory: pytest.TempPathFactory):
    """``once_per_run(name, compute)``: ``compute()`` (JSON-able) once for the whole run, not once per xdist worker.
    The first worker to ask computes it and leaves it beside the workers' temp folders (the run's own folder);
    the others wait on a lock and read it. Without xdist it is just ``compute()``."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return lambda name, compute: compute()
    run_folder = tmp_path_factory.getbasetemp().parent

    def once(name: str, compute: Callable[[], Any]) -> Any:
        result = run_folder / f"{name}.json"
        with open(run_folder / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if result.exists():
                return json.loads(result.read_text())
            value = compute()
            result.write_text(json.dumps(value))
            return value

    return once


@pytest.fixture(scope="session")
def session_secrets() -> frozenset[str]:
    """The redaction registry as the run found it (values registered by the code under test's imports)."""
    from shared import logs

    return frozenset(logs._known_secrets)


@pytest.fixture(scope="module", autouse=True)
def _secrets_registered_by_a_module_end_with_it(session_secrets):
    """``Settings.from_env`` registers secret settings (tokens) for redaction, process-wide. A test module that
    builds settings must not leave them registered for the rest of the run: restore the registry after it."""
    from shared import logs

    yield
    logs._known_secrets.intersection_update(session_secrets)


@pytest.fixture(scope="session")
def sandbox_ca(tmp_path_factory: pytest.TempPathFactory) -> SandboxCA:
    """A throwaway CA whose server certificate covers 127.0.0.1 (https emulators)."""
    return SandboxCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential()


@pytest.fixture(scope="session")
def dev_platform():
    """The dev-uaenorth platform facts from infra/envs (the same file Terraform reads)."""
    return load_environment("dev-uaenorth")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    """One Azurite process for the session, on free ports; stopped at the end."""
    from shared.local.azurite import Azurite

    with Azurite(tmp_path_factory.mktemp("azurite")) as running:
        yield running


@pytest.fixture
def storage(azurite):
    from shared.adapters import HttpOptions
    from shared.adapters.storage import AzureStorage

    client = AzureStorage(connection_string=azurite.connection_string, http=HttpOptions(max_retries=0, timeout=5))
    yield client
    client.close()
