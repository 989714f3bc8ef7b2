import pytest

from shared.errors import BadInputError, ConfigError, PermanentError, TemporaryError
from shared.retry import RetryPolicy, retry


class Flaky:
    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def run(errors, policy=RetryPolicy(attempts=4, base_delay=1, max_delay=8)):
    sleeps = []
    op = Flaky(errors)
    try:
        result = retry(op, policy, sleep=sleeps.append, rand=lambda: 1.0)
    except Exception as exc:
        result = exc
    return result, op.calls, sleeps


@pytest.mark.parametrize(
    ("behaviour", "errors", "calls", "sleeps", "outcome"),
    [
        ("succeeds at once without sleeping", [], 1, [], "done"),
        ("retries temporary errors with doubling backoff", [TemporaryError("x")] * 3, 4, [1, 2, 4], "done"),
        ("honours Retry-After over its own backoff", [TemporaryError("x", retry_after=7)], 2, [7], "done"),
        ("gives up after the last attempt", [TemporaryError("x")] * 4, 4, [1, 2, 4], TemporaryError),
        ("never retries a permanent error", [PermanentError("no", remediation="fix")], 1, [], PermanentError),
        ("never retries bad input", [BadInputError("bad")], 1, [], BadInputError),
        ("does not sit out a Retry-After longer than allowed", [TemporaryError("x", retry_after=600)], 1, [],
         TemporaryError),
    ],
)
def test_retry(behaviour, errors, calls, sleeps, outcome):
    result, made, slept = run(errors)
    assert made == calls, behaviour
    assert slept == sleeps, behaviour
    if isinstance(outcome, str):
        assert result == outcome
    else:
        assert isinstance(result, outcome)


def test_backoff_is_capped_and_jittered():
    policy = RetryPolicy(attempts=10, base_delay=1, max_delay=5)
    assert policy.delay(8, TemporaryError("x"), rand=lambda: 1.0) == 5
    assert policy.delay(8, TemporaryError("x"), rand=lambda: 0.5) == 2.5


def test_permanent_error_carries_its_remediation_in_the_message():
    error = PermanentError("quota exhausted", remediation="request more cores", code="QuotaExceeded")
    assert "request more cores" in str(error) and error.code == "QuotaExceeded"


def test_config_error_lists_every_problem():
    error = ConfigError(["A: missing", "B: bad"])
    assert "2 problem(s)" in str(error) and "A: missing" in str(error) and "B: bad" in str(error)
