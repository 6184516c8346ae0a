"""Hostile input (issue 23): nothing read from a bundle or a run folder runs code, a refused
run destroys nothing, resume checks the bundle, and every numeric setting is range-checked up
front. Each case ends in one InputError (one line, no traceback) before any work and, where
it applies, leaves no marker file and the other run's folder intact.

Cases run in process (`run_app`, or the pre-pass `prepare` where the refusal comes from it);
only the command-line tools and train.py itself are run as subprocesses.
"""

from __future__ import annotations

import ast
import errno
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from training_support import REPO, run_app, small_bundle

from dpp import memory
from dpp.app import cli
from dpp.app.compose import prepare
from dpp.errors import InputError
from dpp.io.bundle import load_bundle
from dpp.io.run_folder import RESOLVED_CONFIG, new_run_folder
from dpp.io.system import read_system
from dpp.models import build_model
from dpp.physics.basis import plane_wave_basis
from dpp.physics.footprint import check_kpoints, footprint
from dpp.physics.lattice import Lattice
from dpp.physics.options import PhysicsOptions
from dpp.runs.folder import within_run_dir
from dpp.runs.lock import RunLock
from dpp.tools.charge_density import main as charge_density
from dpp.tools.convert_bands import main as convert_bands
from dpp.tools.kpath import main as kpath
from dpp.tools.plot_bands import main as plot_bands
from dpp.tools.plot_terms import main as plot_terms
from dpp.tools.primitive_cell import main as primitive_cell

NO_WORK = ["trainer.max_epochs=0", "init.num_epochs=0", "logger=none"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean 5-k-point CdSe bundle (maxKE 1.5); cases copy it before changing it."""
    return small_bundle(tmp_path_factory.mktemp("hostile"), n_k=5, max_ke=1.5)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    shutil.copytree(bundle, folder)
    return folder


def _set_nn(folder: Path, line: str) -> int:
    """Append `line` to NN_config.par (replacing that key); returns its line number."""
    path = folder / "NN_config.par"
    key = line.split("=")[0].strip()
    lines = [ln for ln in path.read_text().splitlines() if ln.split("=")[0].strip() != key]
    path.write_text("\n".join([*lines, line]) + "\n")
    return len(lines) + 1


def _one_line(error: InputError) -> str:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message, message
    for python_text in ("TypeError", "object is not", "not supported between", "operand type"):
        assert python_text not in message, message
    return message


# -- 1. data files are data -----------------------------------------------------------------
MARKER = "MARKER"
CODE_VALUES = {
    "oc_create_open": "${oc.create:{_target_:builtins.open,file:%s,mode:w}}",
    "oc_env_home": "${oc.env:HOME}",
    "self_reference": "${mc.beta_schedule}",
    "target_text": "_target_",
    "nested_interpolation": "schedule_${seed}.par",
}


@pytest.mark.parametrize("name", CODE_VALUES)
def test_nn_config_values_are_literals(bundle: Path, tmp_path: Path, name: str) -> None:
    folder = _copy(bundle, tmp_path)
    marker = tmp_path / MARKER
    value = CODE_VALUES[name].replace("%s", str(marker))
    line = _set_nn(folder, f"mc_beta_schedule = {value}")
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={folder}", *NO_WORK])
    message = _one_line(info.value)
    assert info.value.file.endswith("NN_config.par") and info.value.line == line, message
    assert "literal" in message, message
    assert not marker.exists() and not (tmp_path / "run").exists()


def _saved_run(tmp_path: Path, bundle: Path, change: dict[str, dict]) -> Path:
    """A run folder whose config_resolved.yaml has the sections of a real one, `change`d."""
    folder = tmp_path / "received_run"
    folder.mkdir()
    sections = {
        "data": {"_target_": "dpp.io.data.DataSettings", "bundle": str(bundle)},
        "model": {"_target_": "dpp.models.ModelSettings", "name": "ZeroFunction"},
    }
    for section, values in change.items():
        sections.setdefault(section, {}).update(values)
    (folder / RESOLVED_CONFIG).write_text(yaml.safe_dump(sections))
    return folder


def _open_marker(marker: Path) -> dict:
    return {"_target_": "builtins.open", "_args_": [str(marker), "w"]}


CRAFTED_RUNS = {
    "section_target": lambda m: {"model": _open_marker(m)},
    "nested_target": lambda m: {"model": {"scale": _open_marker(m)}},
    "nested_in_list": lambda m: {"model": {"hidden_layers": [_open_marker(m)]}},
    "private_key": lambda m: {"model": {"_args_": [str(m)]}},
    "interpolation": lambda m: {"data": {"bundle": "${oc.env:HOME}"}},
    "other_section_target": lambda m: {"hamiltonian": _open_marker(m)},
}


@pytest.mark.parametrize("name", CRAFTED_RUNS)
def test_a_received_run_folder_builds_only_dpp_classes(
    bundle: Path, tmp_path: Path, name: str
) -> None:
    marker = tmp_path / MARKER
    run = _saved_run(tmp_path, bundle, CRAFTED_RUNS[name](marker))
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "eval", [f"run={run}"], config_name="evaluate")
    message = _one_line(info.value)
    assert info.value.file.endswith(RESOLVED_CONFIG), message
    assert not marker.exists()


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of `<module>.<name>(...)` or `<name>(...)` in `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else None
            called = called or (function.id if isinstance(function, ast.Name) else None)
            if called == name:
                found.append(node)
    return found


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def test_every_load_of_a_file_is_data_only() -> None:
    """torch.load always with weights_only=True; no pickle, np.load with pickles or yaml
    loader that builds objects anywhere in dpp/."""
    unsafe = []
    for path in sorted((REPO / "dpp").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(REPO)
        for call in _calls(tree, "load"):
            function = call.func
            named = isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
            module = function.value.id if named else ""
            if module == "torch" and _keyword(call, "weights_only") is not True:
                unsafe.append(f"{where}:{call.lineno} torch.load without weights_only=True")
            if module == "np" and _keyword(call, "allow_pickle") is True:
                unsafe.append(f"{where}:{call.lineno} np.load with allow_pickle=True")
            if module in ("pickle", "dill", "marshal"):
                unsafe.append(f"{where}:{call.lineno} {module}.load")
        for name in ("unsafe_load", "full_load"):
            unsafe += [f"{where}:{c.lineno} yaml.{name}" for c in _calls(tree, name)]
    assert unsafe == []


# -- 2. locks never destroy -----------------------------------------------------------------
HOLDER_FILES = (".hydra/config.yaml", RESOLVED_CONFIG, "train.log")
"""What a run has written when it is still at the stage the old cleanup took for its own."""


def _contend(run_dir: Path) -> tuple[list[str], list[InputError]]:
    """Two runs taking `run_dir` at once (threads through `within_run_dir`): the holder writes
    Hydra's files, waits while the other tries, and returns what it finds of them."""
    start = threading.Barrier(2)
    kept: list[str] = []
    refused: list[InputError] = []

    def work() -> None:
        for name in HOLDER_FILES:
            (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / name).write_text("holder\n")
        time.sleep(0.05)
        kept.extend(n for n in HOLDER_FILES if (run_dir / n).is_file())

    def one_run() -> None:
        start.wait()
        try:
            within_run_dir(run_dir, work)
        except InputError as error:
            refused.append(error)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return kept, refused


def test_two_runs_on_one_run_directory_never_destroy_each_other(tmp_path: Path) -> None:
    outcomes = []
    for attempt in range(20):
        run_dir = tmp_path / f"run_{attempt}"
        kept, refused = _contend(run_dir)
        survivors = [n for n in HOLDER_FILES if (run_dir / n).is_file()]
        outcomes.append((len(kept), len(refused), len(survivors)))
        for error in refused:
            assert "another dpp run" in _one_line(error)
    both_ran = sum(1 for _, refused, _ in outcomes if refused == 0)
    assert all(k == s == len(HOLDER_FILES) for k, _, s in outcomes), outcomes
    assert both_ran < 20, "the lock never refused the second run"


def test_a_run_refused_by_the_lock_leaves_the_holder_intact(bundle: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "held"
    with RunLock(run_dir):
        for name in HOLDER_FILES:
            (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / name).write_text("holder\n")
        with pytest.raises(InputError) as info:
            run_app(run_dir, [f"data.bundle={bundle}", *NO_WORK])
        assert "another dpp run" in _one_line(info.value)
        assert all((run_dir / n).is_file() for n in HOLDER_FILES)
    assert all((run_dir / n).is_file() for n in HOLDER_FILES)


TIMESTAMPED = "hydra.run.dir={}/outputs/${{now:%Y}}"
"""A run directory named by the time, as Hydra's default `outputs/${now:…}`, coarse enough
that two runs of a test start in the same period."""


def test_runs_started_in_the_same_second_get_their_own_folders(
    bundle: Path, tmp_path: Path
) -> None:
    config = prepare("train", [f"data.bundle={bundle}", TIMESTAMPED.format(tmp_path)]).config
    first = cli.fresh_run_dir(config)
    (first / "train.log").write_text("first run\n")
    second = cli.fresh_run_dir(config)
    assert first is not None and second is not None and first.is_dir() and second.is_dir()
    assert second == first.with_name(f"{first.name}_1")
    assert (first / "train.log").read_text() == "first run\n" and not any(second.iterdir())
    named = prepare("train", [f"data.bundle={bundle}", f"hydra.run.dir={tmp_path / 'named'}"])
    assert cli.fresh_run_dir(named.config) is None


def test_folders_claimed_at_once_are_all_different(tmp_path: Path) -> None:
    start = threading.Barrier(8)
    claimed: list[Path] = []

    def claim() -> None:
        start.wait()
        claimed.append(new_run_folder(tmp_path / "outputs" / "12-00-00"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(claimed)) == 8 and all(folder.is_dir() for folder in claimed)


@pytest.mark.slow
def test_two_train_processes_in_the_same_second_write_their_own_folders(
    bundle: Path, tmp_path: Path
) -> None:
    arguments = [f"data.bundle={bundle}", TIMESTAMPED.format(tmp_path), *NO_WORK]
    environment = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    jobs = [
        subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), *arguments],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for _ in range(2)
    ]
    errors = [job.communicate(timeout=300)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], [e[-2000:] for e in errors]
    folders = sorted((tmp_path / "outputs").iterdir())
    assert [f.name for f in folders] == [folders[0].name, f"{folders[0].name}_1"], folders
    for folder in folders:
        assert (folder / "final_PPmodel.pth").is_file() and (folder / RESOLVED_CONFIG).is_file()
        assert str(folder) in (folder / RESOLVED_CONFIG).read_text()


# -- 3. resume checks identity --------------------------------------------------------------
def _drop_last_kpoint(folder: Path) -> None:
    for name in ("kpoints_0.par", "expBandStruct_0.par"):
        rows = (folder / name).read_text().splitlines()
        (folder / name).write_text("\n".join(rows[:-1]) + "\n")


def _swap_species(folder: Path) -> None:
    """Te where Se was (the same parameters under another name)."""
    text = (folder / "system_0.par").read_text()
    (folder / "system_0.par").write_text(text.replace("Se", "Te"))
    (folder / "init_SeParams.par").rename(folder / "init_TeParams.par")


OTHER_BUNDLES = {
    "other_kpoints": (_drop_last_kpoint, "kpoints [5] -> [4]"),
    "other_species": (_swap_species, "species ['Cd', 'Se'] -> ['Cd', 'Te']"),
}


@pytest.mark.slow
def test_resume_with_another_bundle_is_refused_naming_what_differs(
    bundle: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    one_epoch = ["trainer.max_epochs=1", "init.num_epochs=0", "logger=none"]
    run_app(run_dir, [f"data.bundle={bundle}", *one_epoch])
    for name, (change, fragment) in OTHER_BUNDLES.items():
        other = tmp_path / name
        shutil.copytree(bundle, other)
        change(other)
        with pytest.raises(InputError) as info:
            run_app(run_dir, [f"data.bundle={other}", *one_epoch, "resume=true"])
        message = _one_line(info.value)
        assert "another bundle" in message and fragment in message, message
    same = tmp_path / "same_bundle_elsewhere"
    shutil.copytree(bundle, same)
    run_app(run_dir, [f"data.bundle={same}", "trainer.max_epochs=2", "resume=true", "logger=none"])
    assert (run_dir / "final_PPmodel.pth").is_file()


@pytest.mark.parametrize("name", OTHER_BUNDLES)
def test_a_checkpoint_of_a_run_on_another_bundle_is_refused_naming_what_differs(
    bundle: Path, tmp_path: Path, name: str
) -> None:
    """`ckpt_path=<another run's checkpoint>` is checked against that run's fingerprint, as
    `resume=true` is (the refusal comes before the checkpoint is read)."""
    earlier = tmp_path / "earlier"
    run_app(earlier, [f"data.bundle={bundle}", *NO_WORK])
    checkpoint = earlier / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir()
    torch.save({"state_dict": {}}, checkpoint)
    change, fragment = OTHER_BUNDLES[name]
    other = tmp_path / name
    shutil.copytree(bundle, other)
    change(other)
    overrides = [f"data.bundle={other}", f"ckpt_path={checkpoint}", "trainer.max_epochs=1"]
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", overrides)
    message = _one_line(info.value)
    assert info.value.key == "ckpt_path" and info.value.file == str(checkpoint), message
    assert "another bundle" in message and fragment in message, message
    assert not (tmp_path / "run").exists()


# -- 4. every numeric setting range-checked up front ----------------------------------------
NUMERIC_OVERRIDES = {
    "gn_damping_inf": (["optimizer.damping=inf"], "optimizer.damping", "finite"),
    "gn_inner_nan": (["optimizer.inner_iterations=nan"], "optimizer.inner_iterations", "finite"),
    "gn_trials_fraction": (["optimizer.trials=2.5"], "optimizer.trials", "integer"),
    "gn_fallback_nan": (["optimizer.fallback.lr=nan"], "optimizer.fallback.lr", "finite"),
    "legacy_lr_nan": (["recipe=legacy", "learning_rate=nan"], "learning_rate", "finite"),
    "legacy_lr_inf": (["recipe=legacy", "learning_rate=inf"], "learning_rate", "finite"),
    "prefit_lr_nan": (["init.optimizer.lr=nan"], "init.optimizer.lr", "finite"),
    "seed_above_numpy": (["seed=99999999999999"], "seed", "0 to 4294967295"),
    "seed_2_70": ([f"seed={2**70}"], "seed", "0 to 4294967295"),
    "seed_negative": (["seed=-1"], "seed", "0 to 4294967295"),
    "davidson_tol_nan": (["hamiltonian.davidson_tol=nan"], "hamiltonian.davidson_tol", "finite"),
    "window_inf": (["loss.window_low=-inf"], "loss.window_low", "finite"),
    "gn_damping_text": (["optimizer.damping=abc"], "optimizer.damping", "finite"),
    "gn_inner_text": (["optimizer.inner_iterations=abc"], "optimizer.inner_iterations", "integer"),
    "prefit_lr_text": (["init.optimizer.lr=abc"], "init.optimizer.lr", "finite"),
    "legacy_gamma_text": (["recipe=legacy", "lr_decay.gamma=abc"], "lr_decay.gamma", "finite"),
    "adam_betas_nan": (
        ["recipe=legacy", "optimizer=adam", "optimizer.betas=[0.9,nan]"],
        "optimizer.betas",
        "finite",
    ),
}


@pytest.mark.parametrize("name", NUMERIC_OVERRIDES)
def test_numeric_overrides_are_range_checked(bundle: Path, tmp_path: Path, name: str) -> None:
    overrides, key, expected = NUMERIC_OVERRIDES[name]
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={bundle}", "trainer.max_epochs=1", *overrides])
    message = _one_line(info.value)
    assert info.value.file == "command-line override" and key in info.value.key, message
    assert expected in info.value.expected, message
    assert not (tmp_path / "run").exists()


NUMERIC_NN_CONFIG = {
    "seed": ("seed = 99999999999999", "0 to 4294967295"),
    "optimizer_lr_nan": ("optimizer_lr = nan", "finite"),
    "init_lr_inf": ("init_Zunger_optimizer_lr = inf", "finite"),
}


@pytest.mark.parametrize("name", NUMERIC_NN_CONFIG)
def test_numeric_nn_config_values_name_their_line(bundle: Path, tmp_path: Path, name: str) -> None:
    folder = _copy(bundle, tmp_path)
    text, expected = NUMERIC_NN_CONFIG[name]
    line = _set_nn(folder, text)
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={folder}", *NO_WORK])
    message = _one_line(info.value)
    assert info.value.file.endswith("NN_config.par") and info.value.line == line, message
    assert expected in info.value.expected, message


def test_an_empty_run_directory_is_refused(bundle: Path) -> None:
    with pytest.raises(InputError) as info:
        prepare("train", [f"data.bundle={bundle}", "hydra.run.dir="])
    assert "hydra.run.dir" in _one_line(info.value)


# -- console tools: numbers, ranges and sizes -----------------------------------------------
CDSE = REPO / "dpp" / "data" / "examples" / "zb_CdSe"
PWO = REPO / "tests" / "data" / "tools" / "si_bands.pwo"
HUGE = "1e9"
TOOL_CASES = {
    "convert_align_nan": (convert_bands, [str(PWO), "--align", "nan"], "--align"),
    "convert_max_ke_1e12": (convert_bands, [str(PWO), "--max-ke", "1e12"], "--max-ke"),
    "convert_max_ke_negative": (convert_bands, [str(PWO), "--max-ke", "-5"], "--max-ke"),
    "kpath_weight_nan": (kpath, [str(CDSE / "system_0.par"), "--weight", "nan"], "--weight"),
    "kpath_weight_negative": (kpath, [str(CDSE / "system_0.par"), "--weight", "-1"], "--weight"),
    "kpath_symprec_nan": (kpath, [str(CDSE / "system_0.par"), "--symprec", "nan"], "--symprec"),
    "kpath_npoints_huge": (
        kpath,
        [str(CDSE / "system_0.par"), "--npoints", str(10**12)],
        "--npoints",
    ),
    "primitive_symprec_nan": (
        primitive_cell,
        [str(CDSE / "system_0.par"), "--symprec", "nan"],
        "--symprec",
    ),
    "primitive_symprec_zero": (
        primitive_cell,
        [str(CDSE / "system_0.par"), "--symprec", "0"],
        "--symprec",
    ),
    "terms_q_max_negative": (plot_terms, [str(CDSE), "--q-max", "-1"], "--q-max"),
    "terms_q_max_inf": (plot_terms, [str(CDSE), "--q-max", "inf"], "--q-max"),
    "terms_max_ke_huge": (plot_terms, [str(CDSE), "--max-ke", "5000"], "--max-ke"),
    "bands_window_reversed": (
        plot_bands,
        ["--bundle", str(CDSE), "--window", "5", "-5"],
        "--window",
    ),
    "bands_window_nan": (plot_bands, ["--bundle", str(CDSE), "--window", "nan", "5"], "--window"),
    "bands_dpi_zero": (plot_bands, ["--bundle", str(CDSE), "--dpi", "0"], "--dpi"),
    "bands_dpi_huge": (plot_bands, ["--bundle", str(CDSE), "--dpi", "10000000"], "--dpi"),
    "density_grid_huge": (
        charge_density,
        [str(CDSE), "--max-ke", "3", "--bands", "0", "--grid", "100000", "100000", "100000"],
        "--grid",
    ),
    "density_max_ke_huge": (
        charge_density,
        [str(CDSE), "--max-ke", HUGE, "--bands", "0"],
        "--max-ke",
    ),
}


@pytest.mark.parametrize("name", TOOL_CASES)
def test_console_tools_refuse_bad_numbers_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str
) -> None:
    tool, argv, option = TOOL_CASES[name]
    output = tmp_path / "out"
    assert tool([*argv, "-o", str(output)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"'{option}'" in lines[0], lines
    assert "Traceback" not in lines[0] and "TypeError" not in lines[0]
    assert not output.exists()


def test_plot_bands_into_a_folder_writes_into_it(tmp_path: Path) -> None:
    assert plot_bands(["--bundle", str(CDSE), "-o", str(tmp_path)]) == 0
    assert (tmp_path / "bands.png").is_file() and not tmp_path.with_suffix(".png").exists()


# -- 5. resource estimates before work ------------------------------------------------------
EIGHT_GIB = 8 * 2**30


@pytest.mark.parametrize("max_ke", ["120", "300", "2000"])
def test_a_cutoff_beyond_the_memory_is_refused_with_the_estimate(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_ke: str
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: EIGHT_GIB)
    folder = _copy(bundle, tmp_path)
    text = (folder / "input_0.par").read_text()
    (folder / "input_0.par").write_text(re.sub(r"maxKE\s*=.*", f"maxKE = {max_ke}", text))
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={folder}", "trainer.max_epochs=1"])
    message = _one_line(info.value)
    assert info.value.file.endswith("input_0.par") and info.value.key == "maxKE", message
    assert "GiB" in message and "8 GiB of memory available" in message, message
    assert "lower maxKE" in message and not (tmp_path / "run").exists()


MILLION = 10**6


def _assert_kpoint_refusal(error: InputError, n_kpoints: int) -> None:
    message = _one_line(error)
    assert error.file is not None and error.file.endswith("kpoints_0.par"), message
    assert f"{n_kpoints} k-points" in message and "per k-point, batches of" in message, message
    assert "GiB" in message and "8 GiB of memory available" in message, message
    assert "fewer k-points" in message and "k_chunk" in message, message


def test_a_million_kpoints_are_refused_with_the_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The k-point dimension of the estimate: CdSe at maxKE 10 (537 plane waves) fits with
    its 61 k-points; 10⁶ k-points keep a Davidson block and a kinetic row each (~130 GiB)."""
    monkeypatch.setattr(memory, "available_bytes", lambda: EIGHT_GIB)
    system = load_bundle(CDSE).systems[0]
    lattice = Lattice.from_crystal(system.crystal)
    n_basis = len(plane_wave_basis(lattice.reciprocal, system.settings.max_ke)[0])
    file = system.files["kpoints"]
    check_kpoints(system.n_kpoints, n_basis, 16, PhysicsOptions(), system=0, file=file)
    with pytest.raises(InputError) as info:
        check_kpoints(MILLION, n_basis, 16, PhysicsOptions(), system=0, file=file)
    _assert_kpoint_refusal(info.value, MILLION)
    assert footprint(MILLION, n_basis, 16, PhysicsOptions()).total > 100 * 2**30


@pytest.mark.slow
def test_a_million_kpoint_file_is_refused_before_any_band_is_solved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: EIGHT_GIB)
    folder = tmp_path / "bundle"
    shutil.copytree(CDSE, folder)
    (folder / "init_PPmodel.pth").unlink(missing_ok=True)
    (folder / "kpoints_0.par").write_text("0.1 0.2 0.3 1.0\n" * MILLION)
    (folder / "expBandStruct_0.par").write_text("0.0 -1.0 -1.0\n" * MILLION)
    (folder / "bandWeights_0.par").write_text("1.0\n1.0\n")
    text = (folder / "input_0.par").read_text()
    (folder / "input_0.par").write_text(re.sub(r"nBands\s*=.*", "nBands = 2", text))
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={folder}", *NO_WORK])
    _assert_kpoint_refusal(info.value, MILLION)
    assert not (tmp_path / "run").exists()


def test_more_ddp_processes_than_cores_are_refused_before_spawning(
    bundle: Path, tmp_path: Path
) -> None:
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=64"]
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={bundle}", "trainer.max_epochs=1", *ddp])
    message = _one_line(info.value)
    assert info.value.key.startswith("trainer.devices") and "CPU cores" in message, message


# -- 6. sweeps ------------------------------------------------------------------------------
SHARED_FOLDERS = {
    "fixed_subdir": ["seed=0,1", "hydra.sweep.subdir=same"],
    "subdir_of_one_swept_key": ["seed=0,1", "learning_rate=1,2", "hydra.sweep.subdir=s${seed}"],
    "group_sweep": ["recipe=legacy", "optimizer=adam,sgd", "hydra.sweep.subdir=same"],
}


@pytest.mark.parametrize("name", SHARED_FOLDERS)
def test_sweep_jobs_sharing_a_folder_are_refused_before_they_start(
    bundle: Path, tmp_path: Path, name: str
) -> None:
    sweep = tmp_path / "sweep"
    overrides = [f"data.bundle={bundle}", f"hydra.sweep.dir={sweep}", *SHARED_FOLDERS[name]]
    with pytest.raises(InputError) as info:
        prepare("train", overrides, multirun=True)
    message = _one_line(info.value)
    assert info.value.key == "hydra.sweep.subdir" and "jobs 0 and 1" in message, message
    assert not sweep.exists()


def test_sweep_jobs_in_their_own_folders_pass(bundle: Path, tmp_path: Path) -> None:
    subdir = "hydra.sweep.subdir=s${seed}"
    prepare("train", [f"data.bundle={bundle}", "seed=0,1", subdir], multirun=True)


def test_launcher_workers_see_the_composed_nn_config(bundle: Path) -> None:
    """A process started after the pre-pass (a joblib worker) composes the bundle's values."""
    prepare("train", [f"data.bundle={bundle}"])
    script = (
        "from dpp.app.compose import compose_config; "
        "print(list(compose_config('train', []).model.hidden_layers))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[20, 20, 20]", result.stderr[-2000:]


# -- files that are not what they claim -----------------------------------------------------
def _nan_network(path: Path) -> None:
    network = build_model("Net_celu_HeInit_decayGaussian", [20, 20, 20], 2, gaussian_std=2.0)
    state = network.state_dict()
    next(v for v in state.values() if v.is_floating_point()).fill_(float("nan"))
    torch.save(state, path)


def _sparse_reference(folder: Path) -> None:
    """expBandStruct_0.par as a 32 MiB sparse file of NUL bytes (no line breaks)."""
    os.truncate(folder / "expBandStruct_0.par", 32 * 2**20)


def _dangling_weights(folder: Path) -> None:
    (folder / "bandWeights_0.par").unlink()
    (folder / "bandWeights_0.par").symlink_to(folder / "no_such_weights.par")


def _nan_init_model(folder: Path) -> None:
    _nan_network(folder / "init_PPmodel.pth")


BROKEN_FILES = {
    "sparse_reference": (_sparse_reference, "expBandStruct_0.par", "line too long"),
    "dangling_band_weights": (_dangling_weights, "bandWeights_0.par", "broken symbolic link"),
    "nan_init_model": (_nan_init_model, "init_PPmodel.pth", "NaN or infinite"),
}


@pytest.mark.parametrize("name", BROKEN_FILES)
def test_broken_bundle_files_are_refused(bundle: Path, tmp_path: Path, name: str) -> None:
    folder = _copy(bundle, tmp_path)
    change, file, fragment = BROKEN_FILES[name]
    change(folder)
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "run", [f"data.bundle={folder}", "trainer.max_epochs=1"])
    message = _one_line(info.value)
    assert info.value.file.endswith(file) and fragment in message, message


def test_evaluating_a_nan_network_is_refused(bundle: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "nan.pth"
    _nan_network(checkpoint)
    overrides = [f"data.bundle={bundle}", f"checkpoint={checkpoint}"]
    with pytest.raises(InputError) as info:
        run_app(tmp_path / "eval", overrides, config_name="evaluate")
    assert "NaN or infinite" in _one_line(info.value)
    assert not (tmp_path / "eval" / "bands_sys0.dat").exists()


@pytest.mark.slow
def test_a_system_name_with_mathtext_is_drawn_as_text(bundle: Path, tmp_path: Path) -> None:
    folder = _copy(bundle, tmp_path)
    with open(folder / "input_0.par", "a") as stream:
        stream.write("systemName = $x^\n")
    run_app(tmp_path / "run", [f"data.bundle={folder}", *NO_WORK])
    assert (tmp_path / "run" / "final_plotBS.png").stat().st_size > 0


def test_an_unreadable_bundle_folder_is_one_line(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Path.is_file

    def denied(path: Path) -> bool:
        if str(path).startswith(str(bundle)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return original(path)

    monkeypatch.setattr(Path, "is_file", denied)
    with pytest.raises(InputError) as info:
        prepare("train", [f"data.bundle={bundle}"])
    assert "Permission denied" in _one_line(info.value)


def test_a_full_disk_is_one_line_naming_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    target = tmp_path / "run" / "final_BS_sys0.dat"

    def full(*args: object, **kwargs: object) -> float:
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr("dpp.app.run.run", full)
    with pytest.raises(SystemExit) as stop:
        cli._task(None)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert stop.value.code == 1 and len(lines) == 1, lines
    assert str(tmp_path / "run") in lines[0] and "free" in lines[0], lines


@pytest.mark.parametrize("max_ke", [6.0, 20.0])
def test_the_plane_wave_estimate_matches_the_basis(max_ke: float) -> None:
    lattice = Lattice.from_crystal(read_system(CDSE / "system_0.par"))
    labels, _ = plane_wave_basis(lattice.reciprocal, max_ke)
    estimate = memory.plane_waves(lattice.volume, max_ke)
    assert estimate == pytest.approx(len(labels), rel=0.1)
