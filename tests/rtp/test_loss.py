"""The receiver's loss tracking: gaps after the newest packet and below the first one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rtcdn.rtp.loss import LOSS_WINDOW, LossTracker


def test_gaps_after_the_newest_packet_are_missing_until_they_arrive() -> None:
    loss = LossTracker()
    assert loss.add(100) is False
    assert loss.add(101) is False
    assert loss.add(104) is True and loss.missing == {102, 103}
    assert loss.add(103) is False and loss.missing == {102}
    assert loss.add(105) is False and loss.missing == {102}


def test_a_reordered_start_counts_the_gaps_below_the_first_packet() -> None:
    """The first packet to arrive is not the first sent: what lies between is missing too."""
    loss = LossTracker()
    loss.add(17937)
    assert loss.add(17928) is True and loss.missing == set(range(17929, 17937))
    for seq in (17930, 17932, 17933, 17934, 17935, 17936, 17929):
        loss.add(seq)
    assert loss.missing == {17931}  # lost on the hop: asked for, never taken for received
    assert loss.add(17925) is True and loss.missing == {17926, 17927, 17931}


def test_sequence_numbers_wrap() -> None:
    loss = LossTracker()
    loss.add(65534)
    assert loss.add(1) is True and loss.missing == {65535, 0}
    loss = LossTracker()
    loss.add(2)
    assert loss.add(65533) is True and loss.missing == {65534, 65535, 0, 1}


def test_old_gaps_are_forgotten_and_a_jump_starts_over() -> None:
    loss = LossTracker()
    loss.add(0)
    loss.add(2)
    loss.add(2 + LOSS_WINDOW)
    assert 1 not in loss.missing and 3 in loss.missing
    assert loss.add(0) is False  # out of the window: neither received nor a new gap
    loss = LossTracker()
    loss.add(10)
    assert loss.add(10 + LOSS_WINDOW + 1) is False and loss.missing == set()


@given(st.permutations(range(200)), st.sets(st.integers(0, 199), max_size=30), st.integers(0, 65535))
def test_missing_is_exactly_what_was_not_received(order: list[int], lost: set[int], base: int) -> None:
    """Any arrival order of a stretch shorter than the window: missing is what never came, between
    the lowest and the highest that did."""
    loss = LossTracker()
    came = [k for k in order if k not in lost]
    for k in came:
        loss.add((base + k) & 0xFFFF)
    if came:
        expected = {(base + k) & 0xFFFF for k in range(min(came), max(came) + 1) if k in lost}
        assert loss.missing == expected


@given(st.sets(st.integers(1, 1499), max_size=200), st.integers(0, 65535))
def test_past_the_window_only_the_recent_gaps_stay(lost: set[int], base: int) -> None:
    """A stream longer than the window: what is missing is what was lost within the window of the
    newest packet (older gaps are let go, also when the set is swept only now and then)."""
    loss = LossTracker()
    for k in range(1500):
        if k not in lost:
            loss.add((base + k) & 0xFFFF)
    newest = max(k for k in range(1500) if k not in lost)
    assert loss.missing == {(base + k) & 0xFFFF for k in lost if k < newest and newest - k <= LOSS_WINDOW}
