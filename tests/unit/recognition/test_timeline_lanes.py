"""The video timeline: bars of one row that overlap in time go into lanes, one under another."""

from types import SimpleNamespace

from recognition.pages import video_timeline


def appearance(start: float, end: float):
    return SimpleNamespace(start_seconds=start, end_seconds=end, subject=None)


def test_bars_seen_at_the_same_time_get_lanes_of_their_own_and_later_ones_reuse_them():
    asset = SimpleNamespace(duration_seconds=10.0)
    tracks = [appearance(7.5, 9.0), appearance(7.5, 9.0), appearance(0.0, 0.0), appearance(0.0, 2.0),
              appearance(2.6, 3.0), appearance(9.0, 9.0)]
    [row] = video_timeline(asset, tracks)
    lanes = {(bar.appearance.start_seconds, bar.appearance.end_seconds, bar.lane) for bar in row.bars}
    assert lanes == {(0.0, 0.0, 0), (0.0, 2.0, 1), (2.6, 3.0, 0), (7.5, 9.0, 0), (7.5, 9.0, 1), (9.0, 9.0, 2)}
    assert row.lanes == 3 and row.label == "Not recognised"


def test_a_row_without_overlaps_keeps_one_lane():
    [row] = video_timeline(SimpleNamespace(duration_seconds=10.0), [appearance(0, 1), appearance(5, 6)])
    assert [bar.lane for bar in row.bars] == [0, 0] and row.lanes == 1
