"""dpp.outputs.movies and dpp-movie: frame order, padding, the mp4 read back, no ffmpeg."""

from __future__ import annotations

import logging
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest

from dpp.io import load_bundle
from dpp.outputs import movies
from dpp.outputs.reporter import OutputSettings, Reporter
from dpp.tools.movie import main as dpp_movie

# (name, height, width, grey level): deliberately out of order on disk, two sizes
FRAMES = [
    ("epoch_10_plotBS.png", 60, 90, 40),
    ("epoch_2_plotBS.png", 60, 90, 80),
    ("initZunger_plotBS.png", 50, 70, 120),
    ("mc_iter_5_plotBS.png", 50, 70, 160),
    ("preEpoch_1_plotBS.png", 50, 70, 200),
    ("oldFunc_plotBS.png", 50, 70, 0),  # not a frame
    ("epoch_2_plotPP.png", 40, 40, 100),
]
ORDER = [
    "initZunger_plotBS.png",
    "preEpoch_1_plotBS.png",
    "mc_iter_5_plotBS.png",
    "epoch_2_plotBS.png",
    "epoch_10_plotBS.png",
]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder with flat grey frames (RGBA) of the sizes and levels of FRAMES."""
    for name, height, width, level in FRAMES:
        image = np.full((height, width, 4), level, dtype=np.uint8)
        image[:, :, 3] = 255
        iio.imwrite(tmp_path / name, image)
    return tmp_path


def _read(path: Path) -> list[np.ndarray]:
    reader = imageio.get_reader(path)
    frames = [frame for frame in reader]
    reader.close()
    return frames


def test_frames_in_order_padded_to_one_size(run_dir: Path) -> None:
    assert [p.name for p in movies.find_frames(run_dir, "BS")] == ORDER
    written = movies.write_run_movies(run_dir, fps=4)
    assert [p.name for p in written] == ["movie_BS.mp4", "movie_PP.mp4"]
    frames = _read(run_dir / "movie_BS.mp4")
    assert len(frames) == len(ORDER)
    assert {frame.shape for frame in frames} == {(64, 96, 3)}  # 60 x 90 up to 16-multiples
    levels = {name: level for name, _, _, level in FRAMES}
    for frame, name in zip(frames, ORDER, strict=True):  # centre: that frame; corner: padding
        assert abs(int(frame[32, 48].mean()) - levels[name]) <= 6
        assert frame[0, 0].min() >= 240
    assert len(_read(run_dir / "movie_PP.mp4")) == 1
    assert not list(run_dir.glob(".movie_*"))  # no temporary file left


def test_dpp_movie_command(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dpp_movie(["--help"]) == 0
    assert "RUN_DIR" in capsys.readouterr().out
    assert dpp_movie([str(run_dir / "missing")]) == 2
    empty = run_dir / "empty"
    empty.mkdir()
    assert dpp_movie([str(empty)]) == 2
    assert "no frames" in capsys.readouterr().err
    assert dpp_movie([str(run_dir)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(_read(run_dir / "movie_BS.mp4")) == len(ORDER)
    assert dpp_movie([str(run_dir)]) == 2  # exists
    assert dpp_movie([str(run_dir), "--force", "--fps", "2"]) == 0


def test_no_ffmpeg_is_a_warning_at_the_end_of_a_run(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/usr/bin/ffmpeg")  # a system binary: refused
    with pytest.raises(movies.MovieError, match="imageio-ffmpeg"):
        movies.ffmpeg_binary()
    bundle = load_bundle(Path(__file__).parents[1] / "dpp" / "data" / "examples" / "zb_CdSe")
    reporter = Reporter(run_dir, bundle, OutputSettings(movies=True))
    with caplog.at_level(logging.WARNING):
        assert reporter.movies() == []
    assert "movies skipped" in caplog.text
    assert not (run_dir / "movie_BS.mp4").exists()
    assert dpp_movie([str(run_dir)]) == 2
    assert Reporter(run_dir, bundle, OutputSettings()).movies() == []  # off by default
