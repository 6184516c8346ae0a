"""`dpp-movie`: make movie_BS.mp4 and movie_PP.mp4 of a finished run from its plots (genMovie).

Frames are the run folder's band plots (`*_plotBS.png`) and potential plots (`*_plotPP.png`)
in the order initZunger → preEpoch_P → mc_iter_t → epoch_E (numbers ascending), padded to one
size and encoded as H.264 by the ffmpeg binary of imageio-ffmpeg. The same movies are written
at the end of a run with `outputs.movies=true`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpp.errors import InputError
from dpp.outputs.movies import FPS, KINDS, MovieError, find_frames, movie_path, write_movie
from dpp.tools.common import description, refuse_overwrite, run_tool

PROG = "dpp-movie"


def _movies(args: argparse.Namespace) -> None:
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise InputError(run_dir, "run folder not found", expected="the folder of a dpp run")
    if args.fps < 1:
        raise InputError(None, "frame rate must be positive", key="--fps", found=str(args.fps))
    frames = {kind: find_frames(run_dir, kind) for kind in KINDS}
    if not any(frames.values()):
        raise InputError(
            run_dir,
            "no frames",
            expected="initZunger_/preEpoch_P_/mc_iter_t_/epoch_E_plotBS.png or _plotPP.png",
            found="none",
        )
    refuse_overwrite([movie_path(run_dir, kind) for kind in KINDS if frames[kind]], args.force)
    for kind in KINDS:
        if not frames[kind]:
            print(f"no *_plot{kind}.png frames: {movie_path(run_dir, kind).name} skipped")
            continue
        try:
            path = write_movie(frames[kind], movie_path(run_dir, kind), args.fps)
        except MovieError as error:
            raise InputError(None, "cannot write the movie", found=str(error)) from None
        print(f"wrote {path} ({len(frames[kind])} frames)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="folder of a dpp run")
    parser.add_argument("--fps", type=int, default=FPS, help=f"frames per second ({FPS})")
    parser.add_argument("--force", action="store_true", help="overwrite existing movies")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-movie`."""
    return run_tool(build_parser(), argv, _movies)


if __name__ == "__main__":
    sys.exit(main())
