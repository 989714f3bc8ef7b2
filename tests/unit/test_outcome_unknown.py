"""A request that may have been applied is never sent again blindly."""

import pytest

from shared.errors import OutcomeUnknownError, TemporaryError
from shared.retry import RetryPolicy, retry


def test_retry_never_resends_a_request_whose_outcome_is_unknown():
    calls = []

    def create():
        calls.append(1)
        raise OutcomeUnknownError("timed out after sending the create")

    with pytest.raises(OutcomeUnknownError) as caught:
        retry(create, RetryPolicy(attempts=5), sleep=lambda s: None)
    assert calls == [1]
    assert caught.value.code == "OutcomeUnknown"


def test_an_unknown_outcome_is_a_temporary_error_for_callers_that_only_tell_temporary_from_permanent():
    assert isinstance(OutcomeUnknownError("x"), TemporaryError)
