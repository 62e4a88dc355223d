"""What a video shows, person by person: for each face track, how long it was in view, the share
of its time spent in each expression, the dominant one, and a timeline plot.

A track's frames are the sampled frames it was found in (every ``--every``-th frame, evenly
spaced), so a share of its frames is a share of its time in view. The dominant expression is the
one with the largest share (ties: the larger mean probability). Works on the records of
:func:`fer_nla.predict.predict_files`; the plot needs matplotlib and draws with its object API
(``matplotlib.figure.Figure``: no global figure registry, no backend switch).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_nla.predict.inputs import is_stream, safe_name
from fer_nla.predict.records import FileRecord

MAX_PLOTTED_TRACKS = 20  # the longest ones; a crowd's timeline stays readable


@dataclass(frozen=True)
class TrackSummary:
    """One face track of one video: ``start``/``end`` (seconds of its first and last sampled
    frame; ``None`` where the video states no frame rate), ``frames`` (sampled frames it is in),
    ``shares`` (class -> share of those frames labelled so, summing to 1), ``dominant`` (the
    class with the largest share) and ``mean_probs`` (class -> mean probability)."""

    file: str
    track_id: int
    start: float | None
    end: float | None
    frames: int
    shares: dict[str, float]
    dominant: str
    mean_probs: dict[str, float]


def summarize_tracks(record: FileRecord, *, class_names: Sequence[str]) -> list[TrackSummary]:
    """One :class:`TrackSummary` per track of a video record, by track id (``[]`` for a photo's
    record, or a video's without faces). ``class_names`` orders the shares."""
    tracks: dict[int, list] = {}
    for face in record.faces:
        if face.track_id is not None:
            tracks.setdefault(face.track_id, []).append(face)
    out = []
    for track_id in sorted(tracks):
        faces = tracks[track_id]
        labels = [face.label for face in faces]
        shares = {name: labels.count(name) / len(faces) for name in class_names}
        means = {name: float(np.mean([face.probs[name] for face in faces])) for name in class_names}
        dominant = max(class_names, key=lambda name: (shares[name], means[name]))
        times = [face.time for face in faces if face.time is not None]
        out.append(TrackSummary(record.file, track_id, min(times) if times else None, max(times) if times else None,
                                len(faces), shares, dominant, means))
    return out


def format_summaries(summaries: Sequence[TrackSummary]) -> str:
    """Lines for a terminal: per video, one line per track with its span, frames, dominant
    expression and every expression with a share of at least 1%, largest first."""
    lines: list[str] = []
    for file in dict.fromkeys(s.file for s in summaries):
        tracks = [s for s in summaries if s.file == file]
        lines.append(f"{file}: {len(tracks)} track{'s' if len(tracks) != 1 else ''}")
        for s in tracks:
            span = f"{s.start:.2f}-{s.end:.2f} s, " if s.start is not None else ""
            shares = ", ".join(f"{name} {share:.0%}" for name, share in sorted(s.shares.items(), key=lambda kv: -kv[1])
                               if share >= 0.01)
            lines.append(f"  track {s.track_id}: {span}{s.frames} frame{'s' if s.frames != 1 else ''}; "
                         f"mostly {s.dominant} ({shares})")
    return "\n".join(lines)


def write_summary_csv(summaries: Sequence[TrackSummary], path: str | Path, *, class_names: Sequence[str]) -> Path:
    """One row per track: ``file, track, start, end, frames, dominant``, then ``share_<class>``
    per class (0..1, 4 decimals)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "track", "start", "end", "frames", "dominant", *(f"share_{c}" for c in class_names)])
        for s in summaries:
            writer.writerow([s.file, s.track_id, "" if s.start is None else f"{s.start:.3f}",
                             "" if s.end is None else f"{s.end:.3f}", s.frames, s.dominant,
                             *(f"{s.shares[c]:.4f}" for c in class_names)])
    return path


def plot_timeline(record: FileRecord, path: str | Path, *, class_names: Sequence[str]) -> Path:
    """A PNG of the video's timeline: one row per track (the :data:`MAX_PLOTTED_TRACKS` seen
    longest), each sampled frame drawn as a bar in its expression's colour, time in seconds on
    the x axis (frame index where the video states no frame rate). Needs matplotlib: raises
    :class:`~fer_nla.errors.InputError` naming the install command without it."""
    import importlib.util

    from fer_nla.errors import InputError

    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("the timeline plot needs matplotlib, not installed here; install it with: pip install matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    summaries = sorted(summarize_tracks(record, class_names=class_names), key=lambda s: -s.frames)[:MAX_PLOTTED_TRACKS]
    colours = {name: f"C{k % 10}" for k, name in enumerate(class_names)}
    timed = all(face.time is not None for face in record.faces)
    points = sorted({(face.time if timed else face.frame) for face in record.faces})
    step = float(np.median(np.diff(points))) if len(points) > 1 else 1.0
    figure = Figure(figsize=(10, 1.0 + 0.45 * max(len(summaries), 1)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row, summary in enumerate(summaries):
        faces = [f for f in record.faces if f.track_id == summary.track_id]
        for name in class_names:
            starts = [(f.time if timed else f.frame) for f in faces if f.label == name]
            if starts:
                axes.broken_barh([(x, step) for x in starts], (row - 0.4, 0.8), facecolors=colours[name])
    axes.set_yticks(range(len(summaries)), [f"track {s.track_id}" for s in summaries])
    axes.invert_yaxis()
    axes.set_xlabel("time (s)" if timed else "frame")
    axes.set_title(Path(record.file).name)
    used = [name for name in class_names if any(f.label == name for f in record.faces)]
    axes.legend(handles=[Patch(color=colours[n], label=n) for n in used], loc="upper left",
                bbox_to_anchor=(1.0, 1.0), fontsize="small")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path


def write_video_reports(records: Sequence[FileRecord], csv_path: str | Path, *,
                        class_names: Sequence[str]) -> tuple[list[Path], str | None]:
    """Beside the predictions CSV ``csv_path``: ``<stem>.tracks.csv`` (one row per track of every
    video, :func:`write_summary_csv`) and a timeline PNG per video with faces,
    ``<stem>.<video name>.timeline.png`` (:func:`plot_timeline`; names that would collide get
    ``-2``, ``-3``). Returns the files written and, when matplotlib is missing, the one line that
    says the PNGs were left out (``None`` otherwise). Nothing is written without a video."""
    from fer_nla.errors import InputError

    videos = [r for r in records if r.frames is not None and r.error is None]
    if not videos:
        return [], None
    base = Path(csv_path)
    written = [write_summary_csv([s for r in videos for s in summarize_tracks(r, class_names=class_names)],
                                 base.with_name(f"{base.stem}.tracks.csv"), class_names=class_names)]
    taken: set[str] = set()
    for record in (r for r in videos if r.faces):
        video = safe_name(record.file.split("://", 1)[1] if is_stream(record.file) else Path(record.file).name)[:100]
        name, k = f"{base.stem}.{video}.timeline.png", 2
        while name in taken:
            name, k = f"{base.stem}.{video}-{k}.timeline.png", k + 1
        taken.add(name)
        try:
            written.append(plot_timeline(record, base.with_name(name), class_names=class_names))
        except InputError as err:
            return written, f"no timeline plot: {err}"
    return written, None
