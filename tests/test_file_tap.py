"""The ALSA file tap a daemon without a sound card plays into: when it is made, that ALSA
really plays into it (even from an awkward path), and what a missing device is told."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfx.audio.alsa_device import AlsaDevice, DeviceParams
from mfx.audio.file_tap import FileTap, explain_missing_device, opened_note, plan, tap_in_force


@pytest.fixture
def no_card(tmp_path: Path) -> Path:
    cards = tmp_path / "cards"
    cards.write_text("--- no soundcards ---\n")
    return cards


@pytest.fixture
def a_card(tmp_path: Path) -> Path:
    cards = tmp_path / "cards-present"
    cards.write_text(" 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n")
    return cards


def test_only_a_machine_without_card_or_configuration_gets_a_tap(tmp_path: Path, no_card: Path,
                                                                 a_card: Path) -> None:
    home = tmp_path / "home"
    assert plan(home, {}, cards=no_card) == FileTap.under(home)
    assert plan(home, {}, cards=tmp_path / "no-proc-asound") == FileTap.under(home)
    assert plan(home, {}, cards=a_card) is None
    assert plan(home, {"ALSA_CONFIG_PATH": "/etc/mine.conf"}, cards=no_card) is None


def test_alsa_plays_into_the_tap_it_describes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tap = FileTap(config=tmp_path / "tap.conf", output=tmp_path / 'odd "dir"' / "out\\put.raw")
    tap.write()
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tap.config))
    assert tap_in_force({"ALSA_CONFIG_PATH": str(tap.config)}) == tap
    params = DeviceParams()
    frames = (np.arange(4096 * 2, dtype=np.int16) % 1000).reshape(-1, 2)
    device = AlsaDevice.open(params)
    try:
        device.write(frames)
        device.drain()
    finally:
        device.close()
    assert tap.output.read_bytes() == frames.tobytes()
    note = opened_note(device.actual, {"ALSA_CONFIG_PATH": str(tap.config)})
    assert str(tap.output) in note and f"aplay -f S16_LE -r 48000 -c 2 {tap.output}" in note


def test_a_home_alsa_cannot_name_still_gets_a_working_tap(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "Jo Doe: music" / "mfx"
    tap = FileTap.under(home)
    assert tap.output == home / "audio" / "output.raw"
    tap.write()
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tap.config))
    device = AlsaDevice.open(DeviceParams())
    try:
        device.write(np.ones((1024, 2), dtype=np.int16))
        device.drain()
    finally:
        device.close()
    assert tap.output.stat().st_size == 1024 * 2 * 2


def test_a_configuration_of_ones_own_is_no_tap(tmp_path: Path) -> None:
    mine = tmp_path / "asound.conf"
    mine.write_text('pcm.!default { type pulse }\n')
    assert tap_in_force({"ALSA_CONFIG_PATH": str(mine)}) is None
    assert opened_note(DeviceParams(), {"ALSA_CONFIG_PATH": str(mine)}) == ""


def test_a_missing_device_is_told_its_cause_and_the_next_step(tmp_path: Path, no_card: Path,
                                                              a_card: Path) -> None:
    no_config = explain_missing_device("default", {}, cards=no_card)
    assert "no sound card" in no_config and "ALSA_CONFIG_PATH is not set" in no_config
    assert "without --no-file-tap" in no_config

    mine = tmp_path / "asound.conf"
    mine.write_text("pcm.other { type null }\n")
    own = explain_missing_device("speakers", {"ALSA_CONFIG_PATH": str(mine)}, cards=no_card)
    assert f"ALSA_CONFIG_PATH ({mine}) does not define it" in own and "aplay -L" in own

    tap = FileTap.under(tmp_path / "home")
    tap.write()
    on_tap = explain_missing_device("hw:0", {"ALSA_CONFIG_PATH": str(tap.config)}, cards=no_card)
    assert "'hw:0' not found" in on_tap and "set spec.device to 'default'" in on_tap

    with_card = explain_missing_device("hw:7", {}, cards=a_card)
    assert "aplay -L" in with_card and "no sound card" not in with_card
