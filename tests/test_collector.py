"""The collector pause of the bulk apply paths: off inside, back on after, never turned on by a
pause that found it off."""

from __future__ import annotations

import gc

import pytest

from mfx.collector import collection_paused


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_is_back_on_after_an_error_too() -> None:
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("refused")
    assert gc.isenabled()


def test_a_pause_inside_another_leaves_it_to_the_outer_one() -> None:
    with collection_paused():
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_program_stays_off() -> None:
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
