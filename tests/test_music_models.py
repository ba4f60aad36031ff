"""Music models on the wire, LRC lyrics, and the interfaces plugin authors subclass."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfx.api.music import (
    Album,
    Artist,
    LyricLine,
    Lyrics,
    PlayerState,
    PlayerStatus,
    Playlist,
    PlayMode,
    Quality,
    SearchResult,
    SearchType,
    Song,
)
from mfx.errors import PluginError
from mfx.sdk.lyrics import format_lrc, load_lrc, parse_lrc
from mfx.sdk.music import AudioProcessor, MusicSource, UIExtension, UnsupportedOperationError, wire


def a_song(**overrides: Any) -> Song:
    values: dict[str, Any] = dict(
        id="local:abc",
        source="local",
        title="Café Del Mar",
        artists=[Artist(id="local:artist:1", name="Energy 52", source="local")],
        album=Album(id="local:album:1", name="Café Del Mar", source="local"),
        track_number=1,
        duration_seconds=12.5,
        path="/music/cafe.flac",
        has_cover=True,
        format="flac",
        qualities=[Quality.LOSSLESS],
    )
    values.update(overrides)
    return Song(**values)


# --- wire form -------------------------------------------------------------------------


def test_models_travel_as_camel_case_json_and_validate_back() -> None:
    state = PlayerState(
        status=PlayerStatus.PLAYING,
        current=a_song(),
        position_seconds=3.2,
        queue=[a_song(), a_song(id="local:def", title="Other")],
        mode=PlayMode.LOOP_ONE,
        volume=40,
    )
    data = json.loads(json.dumps(state.wire()))
    assert data["status"] == "playing" and data["mode"] == "loop-one"
    assert data["positionSeconds"] == 3.2
    assert data["current"]["trackNumber"] == 1 and data["current"]["hasCover"] is True
    assert "url" not in data["current"]  # None fields are left out
    assert PlayerState.from_wire(data) == state


def test_snake_case_dicts_from_plugin_authors_are_accepted_and_unknown_keys_ignored() -> None:
    song = Song.from_wire(
        {"id": "x:1", "source": "x", "title": "T", "track_number": 4, "duration_seconds": 1, "future": 1}
    )
    assert song.track_number == 4 and song.duration_seconds == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [("volume", 101), ("volume", -1), ("positionSeconds", -0.5), ("mode", "random"), ("status", "buffering")],
)
def test_player_state_rejects_values_out_of_range(field: str, value: object) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        PlayerState.from_wire({field: value})


def test_a_playlist_built_from_songs_lists_their_ids() -> None:
    playlist = Playlist(id="p", name="Mix", songs=[a_song(), a_song(id="local:zzz")])
    assert playlist.song_ids == ["local:abc", "local:zzz"]


def test_search_results_merge_per_source_outcomes() -> None:
    local = SearchResult(songs=[a_song()], total=1, answered=["local"])
    slow = SearchResult(timed_out=["netease"])
    broken = SearchResult(failed={"spotify": "CircuitOpen: too many failures"})
    merged = SearchResult.merge([local, slow, broken])
    assert merged.songs == [a_song()]
    assert merged.answered == ["local"] and merged.timed_out == ["netease"]
    assert merged.failed == {"spotify": "CircuitOpen: too many failures"}
    assert merged.items(SearchType.SONG) == [a_song()]
    assert merged.total is None  # not every source said how many it had
    assert SearchResult.merge([local, local]).total == 2


def test_enum_values_are_the_wire_spelling() -> None:
    assert [m.value for m in PlayMode] == ["in-order", "loop-all", "loop-one", "shuffle"]
    assert [s.value for s in SearchType] == ["song", "album", "artist", "playlist"]
    assert Quality("lossless") is Quality.LOSSLESS


# --- lyrics ----------------------------------------------------------------------------


LRC = """[ti:Song]
[ar:Someone]
[by:nobody]
[offset:+500]
[00:01.00]one
[00:03.50][00:10.00]chorus
[00:03.50]副歌
[00:06.123]three
[01:02:50]colon variant
no timestamp here
"""


def test_lrc_lines_are_timed_sorted_and_translations_merged() -> None:
    lyrics = parse_lrc(LRC)
    # +500 ms offset: every line appears half a second sooner.
    assert [(line.time, line.text, line.translation) for line in lyrics.lines] == [
        (0.5, "one", None),
        (3.0, "chorus", "副歌"),
        (5.623, "three", None),
        (9.5, "chorus", None),
        (62.0, "colon variant", None),
    ]


def test_the_line_at_a_position_is_the_last_one_started() -> None:
    lyrics = parse_lrc(LRC)
    assert lyrics.index_at(0.2) is None and lyrics.line_at(0.2) is None
    assert lyrics.line_at(0.5).text == "one"  # type: ignore[union-attr]
    assert lyrics.line_at(4.0).translation == "副歌"  # type: ignore[union-attr]
    assert lyrics.index_at(9.6) == 3
    assert lyrics.line_at(10_000).text == "colon variant"  # type: ignore[union-attr]


def test_negative_offsets_delay_lines_and_never_go_below_zero() -> None:
    assert parse_lrc("[offset:-250]\n[00:01.00]a").lines[0].time == 1.25
    assert parse_lrc("[offset:+3000]\n[00:01.00]a").lines[0].time == 0.0


def test_text_without_timestamps_is_kept_as_plain_lyrics() -> None:
    lyrics = parse_lrc("[ar:x]\nfirst\nsecond\n")
    assert lyrics.lines == [] and lyrics.plain == "first\nsecond"
    assert parse_lrc("").plain is None


def test_gbk_encoded_lrc_files_are_read(tmp_path: Any) -> None:
    path = tmp_path / "song.lrc"
    path.write_bytes("[00:01.00]你好\n".encode("gb18030"))
    assert load_lrc(path).lines[0].text == "你好"


_text = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20).map(str.strip)


@given(
    st.lists(
        st.builds(
            LyricLine,
            time=st.integers(min_value=0, max_value=5_999_999).map(lambda ms: ms / 1000),
            text=_text.filter(lambda t: not t.startswith("[")),
            translation=st.one_of(st.none(), _text.filter(lambda t: t and not t.startswith("["))),
        ),
        max_size=15,
        unique_by=lambda line: line.time,
    )
)
def test_lrc_written_and_parsed_again_is_unchanged(lines: list[LyricLine]) -> None:
    lyrics = Lyrics(lines=lines)
    again = parse_lrc(format_lrc(lyrics))
    if lines:
        assert again.lines == lyrics.lines


# --- interfaces ------------------------------------------------------------------------


class TinySource(MusicSource):
    def search(self, query: str, type: str = "song", limit: int = 30, offset: int = 0) -> Any:
        return wire(SearchResult(songs=[a_song()], answered=["tiny"]))

    def playlist_detail(self, id: str) -> Any:
        return wire(Playlist(id=id, name="p"))

    def song_detail(self, id: str) -> Any:
        return wire(a_song(id=id))

    def song_url(self, id: str, quality: str = "standard") -> str:
        return "/music/cafe.flac"

    def lyrics(self, id: str) -> Any:
        return None


def test_a_music_source_answers_json_and_account_features_are_optional() -> None:
    source = TinySource()
    result = SearchResult.from_wire(json.loads(json.dumps(source.search("cafe"))))
    assert result.songs == [a_song()]
    with pytest.raises(UnsupportedOperationError, match="login is not supported") as info:
        source.login({"user": "u"})
    assert isinstance(info.value, PluginError) and info.value.retryable is False
    with pytest.raises(UnsupportedOperationError):
        source.liked_songs()


def test_an_incomplete_interface_cannot_be_instantiated() -> None:
    class Half(MusicSource):
        def search(self, query: str, type: str = "song", limit: int = 30, offset: int = 0) -> Any:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]


class Gain(AudioProcessor):
    def effects(self) -> list[str]:
        return ["invert"]

    def process(self, block: Any, sample_rate: int) -> Any:
        out = block * np.float32(self.volume)
        return -out if "invert" in self.enabled_effects else out


def test_an_audio_processor_scales_float32_blocks_and_manages_effects() -> None:
    gain = Gain()
    gain.set_volume(0.5)
    gain.set_effect("invert", {})
    block = np.ones((4, 2), dtype=np.float32)
    out = gain.process(block, 48000)
    assert out.dtype == np.float32 and out.shape == (4, 2) and float(out[0, 0]) == -0.5
    with pytest.raises(UnsupportedOperationError, match="no effect 'echo'"):
        gain.set_effect("echo", {})
    with pytest.raises(ValueError, match="0.0..1.0"):
        gain.set_volume(2)


class Line(UIExtension):
    def render(self, state: Any) -> str:
        parsed = PlayerState.from_wire(state)
        return f"{parsed.status.value}: {parsed.current.title if parsed.current else '-'}"

    def handle_input(self, key: str) -> str | None:
        return {"n": "next", " ": "toggle"}.get(key)


def test_a_ui_extension_renders_player_state_and_maps_keys() -> None:
    ui = Line()
    assert ui.render(PlayerState(status=PlayerStatus.PAUSED, current=a_song()).wire()) == "paused: Café Del Mar"
    assert ui.handle_input("n") == "next" and ui.handle_input("x") is None
    assert ui.themes() == [] and ui.keys() == []
    assert ui.layout() == {"regions": [{"name": "bottom", "rows": 1}]}
    with pytest.raises(UnsupportedOperationError, match="unknown theme"):
        ui.theme("neon")
