"""Per-video summaries (fer_nla.predict.summary), --smooth (fer_nla.predict.smoothing) and the
predict command's --summary, on hand-made records and on a real clip of two crossing faces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fer_nla.cli import main
from fer_nla.inference.faces import Box, FacePrediction
from fer_nla.predict.records import FileRecord, SampledFrame
from fer_nla.predict.smoothing import TrackSmoother
from fer_nla.predict.summary import format_summaries, plot_timeline, summarize_tracks, write_video_reports
from test_tracking import crossing_clip

NAMES = ["neutral", "happiness", "anger"]


def face(frame: int, track: int, probs: list[float]) -> FacePrediction:
    return FacePrediction.from_probs(Box(10 * track, 0, 20, 20), np.array(probs), class_names=NAMES, frame=frame,
                                     time=frame / 10, track_id=track)


def video() -> FileRecord:
    """Track 0 in frames 0-9: happiness 7 of them, neutral 3; track 1 in frames 5-8: anger."""
    faces = [face(k, 0, [0.6, 0.3, 0.1] if k < 3 else [0.2, 0.7, 0.1]) for k in range(10)]
    faces += [face(k, 1, [0.1, 0.1, 0.8]) for k in range(5, 9)]
    return FileRecord("clip.mp4", faces=faces, frames=[SampledFrame(k, k / 10) for k in range(10)])


def test_each_track_gets_its_span_shares_and_dominant_expression():
    first, second = summarize_tracks(video(), class_names=NAMES)
    assert (first.track_id, first.start, first.end, first.frames, first.dominant) == (0, 0.0, 0.9, 10, "happiness")
    assert first.shares == {"neutral": 0.3, "happiness": 0.7, "anger": 0.0}
    assert first.mean_probs["happiness"] == pytest.approx(0.3 * 0.3 + 0.7 * 0.7)
    assert (second.track_id, second.start, second.end, second.frames, second.dominant) == (1, 0.5, 0.8, 4, "anger")
    assert format_summaries([first, second]).splitlines() == [
        "clip.mp4: 2 tracks",
        "  track 0: 0.00-0.90 s, 10 frames; mostly happiness (happiness 70%, neutral 30%)",
        "  track 1: 0.50-0.80 s, 4 frames; mostly anger (anger 100%)",
    ]
    assert summarize_tracks(FileRecord("photo.jpg", faces=[FacePrediction.from_probs(
        Box(0, 0, 5, 5), np.array([1.0, 0, 0]), class_names=NAMES)]), class_names=NAMES) == []


def test_video_reports_are_a_tracks_csv_and_a_timeline_png_beside_the_csv(tmp_path: Path):
    pytest.importorskip("matplotlib")
    records = [video(), video(), FileRecord("photo.jpg")]  # two videos of one name: the PNGs do not collide
    written, missing = write_video_reports(records, tmp_path / "out.csv", class_names=NAMES)
    assert missing is None
    assert [p.name for p in written] == ["out.tracks.csv", "out.clip.mp4.timeline.png", "out.clip.mp4-2.timeline.png"]
    rows = (tmp_path / "out.tracks.csv").read_text().splitlines()
    assert rows[0] == "file,track,start,end,frames,dominant,share_neutral,share_happiness,share_anger"
    assert rows[1] == "clip.mp4,0,0.000,0.900,10,happiness,0.3000,0.7000,0.0000" and len(rows) == 5
    from PIL import Image

    image = np.asarray(Image.open(written[1]).convert("RGB"))
    assert image.shape[1] == 1000 and (image != 255).any(axis=2).mean() > 0.05  # drawn, not blank
    assert write_video_reports([FileRecord("photo.jpg")], tmp_path / "x.csv", class_names=NAMES) == ([], None)


def test_the_timeline_without_matplotlib_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import importlib.util

    from fer_nla.errors import InputError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real(n, *a))
    with pytest.raises(InputError, match="the timeline plot needs matplotlib"):
        plot_timeline(video(), tmp_path / "t.png", class_names=NAMES)
    written, missing = write_video_reports([video()], tmp_path / "out.csv", class_names=NAMES)
    assert [p.name for p in written] == ["out.tracks.csv"] and missing.startswith("no timeline plot:")


def test_smoothing_is_an_exponential_moving_average_in_time_per_track():
    smoother = TrackSmoother(0.5)
    np.testing.assert_allclose(smoother.smooth(0, 0.0, [1.0, 0.0]), [1.0, 0.0])  # a track's first frame as it is
    np.testing.assert_allclose(smoother.smooth(7, 0.0, [0.0, 1.0]), [0.0, 1.0])  # another track, its own state
    a = 1 - math.exp(-0.1 / 0.5)
    np.testing.assert_allclose(smoother.smooth(0, 0.1, [0.0, 1.0]), [1 - a, a])
    b = 1 - math.exp(-0.4 / 0.5)  # a longer gap counts more
    np.testing.assert_allclose(smoother.smooth(0, 0.5, [0.0, 1.0]), [(1 - a) * (1 - b), 1 - (1 - a) * (1 - b)])
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive number of seconds"):
            TrackSmoother(bad)


@pytest.mark.slow
def test_predict_summary_and_smooth_on_a_clip_of_two_crossing_faces(tmp_path: Path, capsys: pytest.CaptureFixture):
    clip = crossing_clip(tmp_path / "cross.avi")
    assert main(["predict", str(clip), "--summary", "--csv", str(tmp_path / "out.csv")]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert f"{clip}: 2 tracks" in lines
    assert sum(line.startswith("  track 0: 0.00-2.88 s, ") or line.startswith("  track 1: 0.00-2.88 s, ")
               for line in lines) == 2
    assert (tmp_path / "out.tracks.csv").is_file() and (tmp_path / "out.cross.avi.timeline.png").is_file()
    assert "and 2 summary file(s) beside it" in out.err
    assert main(["predict", str(clip), "--smooth", "1", "--json"]) == 0
    smoothed = capsys.readouterr().out
    assert '"track_id": 1' in smoothed
    assert main(["predict", str(clip), "--smooth", "0"]) == 2
    assert "--smooth 0: give a positive number of seconds" in capsys.readouterr().err


@pytest.mark.slow
def test_smooth_replaces_each_tracks_probabilities_by_their_moving_average(tmp_path: Path):
    from fer_nla.predict import Predictor, predict_files

    clip, predictor = crossing_clip(tmp_path / "cross.avi", flicker=True), Predictor()
    (raw,), (smooth,) = predict_files(predictor, [clip]), predict_files(predictor, [clip], smooth=0.5)
    expected = TrackSmoother(0.5)
    for before, after in zip(raw.faces, smooth.faces):
        assert (before.frame, before.track_id, before.box) == (after.frame, after.track_id, after.box)
        names = list(before.probs)
        want = expected.smooth(before.track_id, before.time, np.array([before.probs[n] for n in names]))
        np.testing.assert_allclose([after.probs[n] for n in names], want, atol=1e-6)
        assert after.label == names[int(np.argmax(want))]
    changed = [abs(a.probs[a.label] - b.probs[a.label]) for a, b in zip(smooth.faces, raw.faces)]
    assert max(changed) > 0.05  # the flickering face moved the left track's probabilities; the average held them
