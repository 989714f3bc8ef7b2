"""Makes tests/infra/infra_helpers.py importable here too (test_runbooks reads the alerts' for_each maps with it)."""

import sys
from pathlib import Path

_INFRA_TESTS = str(Path(__file__).resolve().parents[1] / "infra")
if _INFRA_TESTS not in sys.path:
    sys.path.insert(0, _INFRA_TESTS)
