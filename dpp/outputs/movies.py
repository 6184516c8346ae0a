"""Movies of a run (the original's genMovie): `movie_BS.mp4` and `movie_PP.mp4` from the band
and potential plots in the run folder, in the order initZunger → preEpoch_P → mc_iter_t →
epoch_E (numbers ascending).

Frames are padded (white, centred) to one size, a multiple of 16 pixels, and encoded as
H.264 (yuv420p) at FPS frames per second by the ffmpeg binary that imageio-ffmpeg installs
with pip; a system ffmpeg is never used.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FPS = 8
KINDS = ("BS", "PP")
BLOCK = 16
"""Frame sides are padded to a multiple of this (the codec's macro block)."""
_STAGES = (r"initZunger()", r"preEpoch_(\d+)", r"mc_iter_(\d+)", r"epoch_(\d+)")


class MovieError(RuntimeError):
    """A movie cannot be made (imageio or its ffmpeg binary missing, ffmpeg failed)."""


def movie_path(run_dir: Path, kind: str) -> Path:
    """`movie_<kind>.mp4` in `run_dir` (kind BS or PP)."""
    return Path(run_dir) / f"movie_{kind}.mp4"


def find_frames(run_dir: Path, kind: str) -> list[Path]:
    """The `*_plot<kind>.png` frames of a run in movie order: initZunger, then preEpoch_P,
    mc_iter_t and epoch_E, each by ascending number."""
    patterns = [re.compile(f"{stage}_plot{kind}\\.png") for stage in _STAGES]
    keyed = []
    for path in Path(run_dir).iterdir():
        for rank, pattern in enumerate(patterns):
            match = pattern.fullmatch(path.name)
            if match:
                keyed.append(((rank, int(match.group(1) or 0)), path))
                break
    return [path for _, path in sorted(keyed)]


def ffmpeg_binary() -> str:
    """Path of the ffmpeg binary shipped in the imageio-ffmpeg package; MovieError when that
    package (or its binary) is missing or IMAGEIO_FFMPEG_EXE points elsewhere."""
    try:
        import imageio_ffmpeg
    except ImportError as error:
        raise MovieError("imageio-ffmpeg is not installed (pip install imageio-ffmpeg)") from error
    try:
        exe = Path(imageio_ffmpeg.get_ffmpeg_exe()).resolve()
    except RuntimeError as error:
        raise MovieError(f"no ffmpeg binary in imageio-ffmpeg ({error})") from error
    package = Path(imageio_ffmpeg.__file__).resolve().parent
    if package not in exe.parents:
        raise MovieError(
            f"ffmpeg resolves to {exe}, not to the binary of imageio-ffmpeg in {package} "
            "(unset IMAGEIO_FFMPEG_EXE; reinstall imageio-ffmpeg)"
        )
    return str(exe)


def _rgb(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 from a grey, RGB or RGBA image, transparency over white."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(float) / 255.0
        image = image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    return np.asarray(np.round(image[:, :, :3]), dtype=np.uint8)


def _padded(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """`image` centred on a white (height, width, 3) canvas."""
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    top, left = (height - image.shape[0]) // 2, (width - image.shape[1]) // 2
    canvas[top : top + image.shape[0], left : left + image.shape[1]] = image
    return canvas


def frame_size(frames: Sequence[Path]) -> tuple[int, int]:
    """(height, width) of the movie: the largest frame sides, rounded up to BLOCK pixels."""
    import imageio.v3 as iio

    shapes = [iio.improps(path).shape for path in frames]
    height = max(shape[0] for shape in shapes)
    width = max(shape[1] for shape in shapes)
    return -(-height // BLOCK) * BLOCK, -(-width // BLOCK) * BLOCK


def write_movie(frames: Sequence[Path], path: Path, fps: int = FPS) -> Path:
    """Encode `frames` (PNG files, in order) into the mp4 `path`, written under a temporary
    name and moved into place; MovieError when imageio or ffmpeg fails."""
    if not frames:
        raise MovieError(f"no frames for {Path(path).name}")
    ffmpeg_binary()
    try:
        import imageio.v2 as imageio
        import imageio.v3 as iio
    except ImportError as error:
        raise MovieError("imageio is not installed (pip install imageio)") from error
    path = Path(path)
    height, width = frame_size(frames)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
    os.close(handle)
    try:
        writer = imageio.get_writer(
            temporary,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=BLOCK,
            ffmpeg_log_level="error",
        )
        try:
            for frame in frames:
                writer.append_data(_padded(_rgb(iio.imread(frame)), height, width))
        finally:
            writer.close()
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except (OSError, RuntimeError, ValueError) as error:
        Path(temporary).unlink(missing_ok=True)
        raise MovieError(f"ffmpeg could not write {path.name}: {error}") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_run_movies(run_dir: Path, fps: int = FPS) -> list[Path]:
    """movie_BS.mp4 and movie_PP.mp4 of the frames in `run_dir` (a kind without frames is
    skipped); returns the movies written."""
    return [
        write_movie(frames, movie_path(run_dir, kind), fps)
        for kind in KINDS
        if (frames := find_frames(run_dir, kind))
    ]
