"""The Keeper that renews leases and claims in the background, on a renew function of our own (no SDK)."""

import time

import pytest

from shared.errors import ConflictError, TemporaryError
from shared.state import Keeper


class Renewals:
    def __init__(self, *errors):
        self.errors, self.calls = list(errors), 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            error = self.errors.pop(0)
            if error is not None:
                raise error


def wait_for(condition, seconds=3.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.mark.parametrize(
    ("behaviour", "errors", "lost"),
    [
        ("renews quietly while the work runs", [], False),
        ("rides out a transient failure while the lease still holds", [TemporaryError("blip")], False),
        ("is lost at once when another actor holds it", [ConflictError("taken", code="LeaseLost")], True),
        ("is lost when renewals keep failing until the lease may have expired", [TemporaryError("down")] * 50, True),
    ],
)
def test_keeper(behaviour, errors, lost):
    renew = Renewals(*errors)
    with Keeper(renew, every=0.05, valid_for=0.5, what="the lease on x") as keeper:
        wait_for(lambda: renew.calls >= 3 and (keeper.lost.is_set() or not renew.errors), 3.0)
        time.sleep(0.1)
        assert keeper.lost.is_set() is lost, behaviour
        if lost:
            with pytest.raises(TemporaryError) as caught:
                keeper.check()
            assert caught.value.code == "LeaseLost"
        else:
            keeper.check()


def test_a_backoff_wakes_as_soon_as_the_keeper_is_lost():
    with Keeper(Renewals(ConflictError("taken")), every=0.05, valid_for=0.5, what="the claim on y") as keeper:
        started = time.monotonic()
        with pytest.raises(TemporaryError):
            keeper.sleep(30)
        assert time.monotonic() - started < 2
