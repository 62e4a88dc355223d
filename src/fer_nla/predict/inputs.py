"""What to predict on: files and folders (recursive) expanded to images and videos, decoding.

Folders are walked recursively in sorted order; system files and folders (``.DS_Store``,
AppleDouble ``._x.jpg``, ``__MACOSX``, ``Thumbs.db``: :func:`fer_nla.image_files.is_system_file`,
the predicate the dataset folder reader uses) are skipped. Every other file becomes an input:
videos by their suffix, anything else is read as an image (by content, so a PNG named ``.jpg``
works) with :func:`fer_nla.image_files.decode_image`, the decoder the dataset readers use; a file
that is neither becomes a failed record.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_nla.errors import InputError
from fer_nla.image_files import decode_image, is_system_file

FALLBACK_FPS = 25.0  # the frame rate assumed where a video's container states none
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts", ".mts", ".m2ts", ".mjpeg", ".mjpg"})
PREDICT_FIX = (
    "it is not an image or video file fer-nla can read, or it is truncated or damaged; "
    "re-save it as PNG or JPEG, or leave it out"
)


STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://", "udp://", "tcp://", "srt://")


@dataclass(frozen=True)
class InputFile:
    """One file to predict on, and the relative path its annotated copy gets (see :func:`collect_inputs`).

    A live source (a stream URL, a camera) has ``source`` set: the URL, or the camera's index
    (int) or device path; ``path`` is then only a name (its record's ``file`` is :attr:`label`).
    """

    path: Path
    is_video: bool
    output_name: Path
    source: str | int | None = None

    @property
    def live(self) -> bool:
        """A stream or camera: read as it comes, timed by the clock, ended by --duration or Ctrl-C."""
        return self.source is not None

    @property
    def label(self) -> str:
        """What the records call it: the file's path, the stream's URL, ``camera 0``."""
        if self.source is None:
            return str(self.path)
        return without_credentials(str(self.source)) if is_stream(self.source) else f"camera {self.source}"


def is_stream(text: str | Path) -> bool:
    """Whether a command-line input names a network stream (``rtsp://``, ``http://`` MJPEG, ...)."""
    return isinstance(text, str) and text.lower().startswith(STREAM_SCHEMES)  # a Path has lost its '//' 


def camera_source(text: str) -> int | str:
    """``--camera``'s value as OpenCV takes it: an index (``"0"`` -> 0) or a device path."""
    text = str(text).strip()
    return int(text) if text.isdigit() else text


def without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part (what records, logs and file names may show)."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def safe_name(text: str) -> str:
    """``text`` as a file-name part: letters, digits, ``-``, ``.`` and ``_`` only (the rest ``_``)."""
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in text).strip("_.") or "input"


def live_input(source: str | int) -> InputFile:
    """The :class:`InputFile` of a stream URL or a camera (an index such as ``0``, or a device
    path such as ``/dev/video2``); its annotated copy is named after it (``camera-0.mp4``,
    ``stream-HOST_PATH-HASH.mp4``, the hash of the whole URL keeping two streams of one path but
    different queries apart; credentials never enter the name)."""
    if isinstance(source, int) or not is_stream(source):
        name = safe_name(f"camera-{source}")
    else:
        rest = without_credentials(str(source)).split("://", 1)[1].split("?", 1)[0]
        digest = hashlib.sha1(str(source).encode()).hexdigest()[:8]
        place = safe_name(rest)[:100]  # a file-name part: long query paths are cut, the digest keeps them apart
        name = f"stream-{place}-{digest}"
    return InputFile(Path(name + ".mp4"), True, Path(name + ".mp4"), source=source)


@dataclass(frozen=True)
class InputProblem:
    """A command-line path that yields nothing to predict (missing, or an empty folder)."""

    path: Path
    error: str


def collect_inputs(
    paths: Sequence[str | Path | InputFile], *, exclude: Sequence[str | Path] = ()
) -> tuple[list[InputFile], list[InputProblem]]:
    """The files under ``paths`` (folders walked recursively in sorted order, system files and
    folders skipped), and the paths that gave none. A file named on the command line is kept
    whatever its name.

    ``exclude`` names folders and files never read from inside a folder (the run's own outputs,
    e.g. an ``--annotate`` folder inside an input folder); they are compared by resolved path,
    so ``photos/out`` and ``./photos/../photos/out`` are the same folder.

    Each file's ``output_name`` is its path relative to the folder that holds all the named
    paths (the common parent of their parent folders), so ``a/x.jpg b/x.jpg`` give ``a/x.jpg`` and
    ``b/x.jpg``, two folders both named ``photos`` keep their parents' names, and a single folder
    ``photos/`` gives ``photos/...``: two different input files never share an output name.
    """
    excluded = {Path(p).resolve() for p in exclude}
    named: list[tuple[Path, list[Path]]] = []
    problems: list[InputProblem] = []
    live: list[InputFile] = []
    for raw in paths:
        if isinstance(raw, InputFile):  # a live input already made (a camera: live_input(0))
            live.append(raw)
            continue
        if is_stream(raw):
            live.append(live_input(str(raw)))
            continue
        path = Path(raw)
        if path.is_dir():
            found = _walk(path, excluded)
            if not found:
                problems.append(InputProblem(path, f"folder {path} holds no files to predict on"))
            named.append((path, found))
        elif path.is_file():
            named.append((path, [path]))
        else:
            problems.append(InputProblem(path, f"{path} does not exist; check the path"))
    base = _common_parent([path for path, _ in named])
    files = [InputFile(p, _is_video(p), _output_name(p, path, base)) for path, found in named for p in found]
    return files + live, problems


def _walk(folder: Path, excluded: set[Path]) -> list[Path]:
    """The files under ``folder`` in sorted order, without system files, system folders and ``excluded``."""
    found: list[Path] = []
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not is_system_file(d) and (Path(top, d).resolve() not in excluded)]
        for name in names:
            path = Path(top, name)
            if is_system_file(name) or not path.is_file() or (excluded and path.resolve() in excluded):
                continue
            found.append(path)
    return sorted(found)


def _common_parent(named: list[Path]) -> Path | None:
    """The deepest folder holding the parent folder of every named path (absolute, not resolved:
    a symlinked folder keeps its own name); ``None`` when there is none (Windows drives)."""
    if not named:
        return None
    try:
        return Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in named]))
    except ValueError:  # paths on different drives share no folder
        return None


def _output_name(file: Path, named: Path, base: Path | None) -> Path:
    if base is not None:
        return Path(os.path.abspath(file)).relative_to(base)
    if file == named:
        return Path(file.name)
    return Path(Path(os.path.abspath(named)).name or "input") / file.relative_to(named)


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """The ``HxWx3`` uint8 RGB pixels of an image file, decoded as the dataset readers decode it
    (:func:`fer_nla.image_files.decode_image`: EXIF orientation, first frame, 16-bit and float
    scaled, transparency on white).

    Raises :class:`InputError` naming the file for files that are not images, cannot be
    decoded, or exceed Pillow's decompression-bomb limit."""
    return np.asarray(decode_image(path, fix=PREDICT_FIX))


@dataclass
class VideoInfo:
    """Frame rate, size and frame count of an opened video, as its container states them.

    ``fps`` falls back to 25 when the container states none (``fps_stated`` is then False and
    :meth:`time_of` gives ``None``); ``frame_count`` is 0 when the container states none.
    """

    fps: float
    width: int
    height: int
    frame_count: int
    fps_stated: bool = True

    def time_of(self, index: int) -> float | None:
        """The time of frame ``index`` in seconds (index / fps, rounded to the millisecond), or
        ``None`` when the container states no frame rate."""
        return round(index / self.fps, 3) if self.fps_stated else None


def open_video(path: str | Path | int) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened ``cv2.VideoCapture`` and its properties; :class:`InputError` when OpenCV cannot
    open it. ``path`` is a file, a stream URL or a camera's index (int)."""
    capture = cv2.VideoCapture(path if isinstance(path, int) else str(path))
    if not capture.isOpened():
        capture.release()
        if isinstance(path, int) or str(path).startswith("/dev/"):
            raise InputError(f"camera {path} cannot be opened: no such camera, or another program holds it "
                             "(list cameras with: ls /dev/video*; on macOS and Windows try --camera 1)")
        if is_stream(str(path)):
            raise InputError(f"{path} cannot be opened as a stream: the server did not answer, or sent nothing "
                             "OpenCV's FFmpeg can decode; check the URL in a video player (ffplay, VLC)")
        raise InputError(f"{path} cannot be opened as a video (unsupported codec or damaged file)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    stated = bool(fps and math.isfinite(fps) and fps > 0)
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    info = VideoInfo(
        fps=float(fps) if stated else FALLBACK_FPS,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        frame_count=int(count) if count and math.isfinite(count) and count > 0 else 0, fps_stated=stated,
    )
    return capture, info


class VideoFrames:
    """``(frame index, HxWx3 RGB frame)`` for frames 0, every, 2*every, ... until the video ends
    or a frame cannot be decoded; the frames in between are decoded (``grab``) but not converted.

    After iteration ``decoded`` is how many frames the video gave (sampled or skipped) and
    ``sampled`` how many of them were returned; :meth:`shortfall` compares them with the count
    the container states.
    """

    def __init__(self, capture: cv2.VideoCapture, *, every: int = 1) -> None:
        if every < 1:
            raise InputError(f"--every must be 1 or more (every k-th frame), got {every}")
        self.capture = capture
        self.every = every
        self.decoded = 0
        self.sampled = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        while True:
            index = self.decoded
            if index % self.every == 0:
                ok, frame = self.capture.read()
                if not ok:
                    return
                self.decoded += 1
                self.sampled += 1
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif self.capture.grab():
                self.decoded += 1
            else:
                return

    def shortfall(self, frame_count: int) -> str | None:
        """``"read 3 of 10 frames; ..."`` when the video gave fewer frames than its container
        states (``frame_count``; 0: unknown, nothing to compare), with the sampled frames read
        and expected (``ceil(frame_count / every)``) when ``every`` > 1; else ``None``."""
        if frame_count <= 0 or self.decoded >= frame_count:
            return None
        sampled = ""
        if self.every > 1:
            expected = -(-frame_count // self.every)
            sampled = f" ({self.sampled} of {expected} sampled frames, every {self.every})"
        return (f"read {self.decoded} of {frame_count} frames{sampled}; the rest could not be decoded "
                "(truncated or damaged video)")


class FollowedFrames(VideoFrames):
    """The frames of a video file still being written (a recording in progress), as
    :class:`VideoFrames` gives them: at the file's end it waits ``poll_s`` seconds, opens it
    again, skips the frames already read and goes on, until no new frame came for ``idle_s``
    seconds. For formats FFmpeg reads while they grow (raw MJPEG, MPEG-TS, fragmented MP4); an
    AVI or MP4 whose index is written at the end cannot be read before it is closed."""

    def __init__(self, path: str | Path, *, every: int = 1, idle_s: float = 5.0, poll_s: float = 0.25) -> None:
        super().__init__(None, every=every)  # type: ignore[arg-type] - each pass opens its own capture
        self.path, self.idle_s, self.poll_s = Path(path), idle_s, poll_s

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        quiet_since = time.monotonic()
        while True:
            self.capture = cv2.VideoCapture(str(self.path))
            try:
                skipped = 0
                while skipped < self.decoded and self.capture.grab():
                    skipped += 1
                before = self.decoded
                if skipped == before:
                    yield from super().__iter__()
                if self.decoded > before:
                    quiet_since = time.monotonic()
            finally:
                self.capture.release()
            if time.monotonic() - quiet_since > self.idle_s:
                return
            time.sleep(self.poll_s)


def iter_frames(capture: cv2.VideoCapture, *, every: int = 1) -> VideoFrames:
    """The frames of ``capture`` every ``every``-th (see :class:`VideoFrames`); :class:`InputError`
    when ``every`` < 1."""
    return VideoFrames(capture, every=every)


def quiet_video_decoder_logs() -> None:
    """Keep FFmpeg's own decoder messages (``[mjpeg @ 0x...] overread 8``) and OpenCV's capture
    warnings (``[ WARN:0] ... can't open camera by index``) off stderr: a damaged video or a
    missing camera is reported once, in its record. Sets ``OPENCV_FFMPEG_LOGLEVEL`` for this
    process and OpenCV's log level to errors, unless the user set ``OPENCV_FFMPEG_LOGLEVEL`` /
    ``OPENCV_LOG_LEVEL`` (OpenCV reads the first when it opens its first video), so call it first."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
