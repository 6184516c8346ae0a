"""best_* files: the lowest-loss state of the fit, the final one included."""

from __future__ import annotations

from pathlib import Path

from training_support import run_app, small_bundle


def test_a_fit_whose_final_state_is_its_best_writes_best_files_equal_to_final(tmp_path: Path):
    bundle = small_bundle(tmp_path)
    run_dir = tmp_path / "run"
    run_app(run_dir, [f"data.bundle={bundle}", "trainer.max_epochs=3", "logger=none"])
    best = sorted(p for p in run_dir.glob("best_*") if p.suffix != ".png")
    assert len(best) >= 7, best  # network, bands, q-space and real-space potentials, params
    for path in best:
        final = path.with_name(path.name.replace("best_", "final_", 1))
        assert path.read_bytes() == final.read_bytes(), path.name
    assert (run_dir / "best_plotBS.png").is_file() and (run_dir / "best_plotPP.png").is_file()
