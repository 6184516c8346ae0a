"""`dpp-cluster-potentials`: PCA and K-means over the v(q) curves of many runs.

Inputs are `*_qSpace_pot.dat` tables (header `# q  v(q)_<S1> …`, q in 1/Bohr, v in
Hartree·Bohr³), found under sweep folders or given as files. Each curve (one species of one run,
or all species of a run concatenated) is a sample; curves on different q grids are interpolated
onto the first one. Writes the principal-component coordinates and K-means labels as CSV and a
scatter plot of the first two components; prints the explained variance of each component.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dpp.errors import InputError
from dpp.io.qspace import read_qspace_columns
from dpp.tools.common import description, refuse_overwrite, run_tool

PROG = "dpp-cluster-potentials"
DEFAULT_PATTERN = "final_qSpace_pot.dat"


@dataclass(frozen=True)
class PotentialTable:
    """One *_qSpace_pot.dat: q (n_q,), values (n_q, n_species) in header order, species names."""

    path: Path
    q: np.ndarray
    values: np.ndarray
    species: tuple[str, ...]


@dataclass(frozen=True)
class Clustering:
    """Samples (run names), their PCA coordinates (n, n_components), K-means labels (n,), the
    explained variance ratio per component and the silhouette score (None for one cluster)."""

    names: list[str]
    coordinates: np.ndarray
    labels: np.ndarray
    explained: np.ndarray
    silhouette: float | None


def read_potential_table(path: Path) -> PotentialTable:
    """Read one table with dpp's validated reader (header required; q ≥ 0, increasing, one
    column per name)."""
    species, table = read_qspace_columns(path)
    return PotentialTable(path, table.q, table.values, species)


def find_tables(inputs: list[Path], pattern: str) -> list[Path]:
    """Files among `inputs`, plus every file matching `pattern` below the folders among them."""
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found += sorted(item.rglob(pattern))
        elif item.is_file():
            found.append(item)
        else:
            raise InputError(item, "not found", expected="a *_qSpace_pot.dat file or a folder")
    if not found:
        raise InputError(
            None, "no potential tables found", key="--pattern", expected=f"files named {pattern}"
        )
    return found


def sample_name(path: Path, roots: list[Path]) -> str:
    """The path relative to the sweep folder that contains it (else the path as given)."""
    for root in roots:
        if root.is_dir() and path.is_relative_to(root):
            return str(path.relative_to(root))
    return str(path)


def feature_matrix(
    tables: list[PotentialTable], species: str | None, q_max: float | None
) -> np.ndarray:
    """Rows = runs: v_S(q) of `species`, or all species concatenated (None), on the q grid of
    the first table up to `q_max` (1/Bohr), in Hartree·Bohr³."""
    reference = tables[0]
    grid = reference.q if q_max is None else reference.q[reference.q <= q_max]
    if grid.size < 2:
        raise InputError(reference.path, "fewer than 2 q points", key="--q-max")
    names = reference.species if species is None else (species,)
    rows = []
    for table in tables:
        missing = [name for name in names if name not in table.species]
        if missing:
            raise InputError(
                table.path,
                "species missing",
                expected=f"columns {' '.join(names)}",
                found=" ".join(table.species),
            )
        if table.q[0] > grid[0] + 1e-12 or table.q[-1] < grid[-1] - 1e-12:
            raise InputError(
                table.path,
                "q range too short",
                expected=f"q from {grid[0]:g} to {grid[-1]:g} 1/Bohr",
                found=f"{table.q[0]:g} to {table.q[-1]:g}",
            )
        rows.append(
            np.concatenate(
                [
                    np.interp(grid, table.q, table.values[:, table.species.index(name)])
                    for name in names
                ]
            )
        )
    return np.array(rows)


def cluster(
    features: np.ndarray,
    names: list[str],
    *,
    n_components: int = 2,
    n_clusters: int = 2,
    standardize: bool = False,
    seed: int = 0,
) -> Clustering:
    """PCA to `n_components` and K-means with `n_clusters` in that space (scikit-learn)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    n_samples = features.shape[0]
    if not 1 <= n_clusters <= n_samples:
        raise InputError(
            None,
            "bad number of clusters",
            key="--clusters",
            expected=f"1..{n_samples}",
            found=str(n_clusters),
        )
    components = min(n_components, n_samples, features.shape[1])
    if components < 1:
        raise InputError(None, "bad number of components", key="--components", expected=">= 1")
    data = StandardScaler().fit_transform(features) if standardize else features
    pca = PCA(n_components=components, random_state=seed)
    coordinates = pca.fit_transform(data)
    labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(coordinates)
    silhouette = None
    if 1 < n_clusters < n_samples:
        silhouette = float(silhouette_score(coordinates, labels))
    return Clustering(names, coordinates, labels, pca.explained_variance_ratio_, silhouette)


def write_csv(path: Path, result: Clustering) -> None:
    """Columns: run, PC1 … PCn, cluster."""
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        components = result.coordinates.shape[1]
        writer.writerow(["run", *(f"PC{j + 1}" for j in range(components)), "cluster"])
        for name, row, label in zip(result.names, result.coordinates, result.labels, strict=True):
            writer.writerow([name, *(f"{value:.8g}" for value in row), int(label)])


def scatter_figure(result: Clustering, title: str) -> Figure:
    """PC1 against PC2 (or against the sample index with one component), coloured by cluster."""
    figure = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = figure.subplots()
    x = result.coordinates[:, 0]
    y = result.coordinates[:, 1] if result.coordinates.shape[1] > 1 else np.zeros_like(x)
    for label in np.unique(result.labels):
        chosen = result.labels == label
        ax.scatter(x[chosen], y[chosen], s=30, color=f"C{label % 10}", label=f"cluster {label}")
    ratio = result.explained
    ax.set_xlabel(f"PC1 ({100 * ratio[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * ratio[1]:.1f}% of variance)" if ratio.size > 1 else "")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return figure


def _run(args: argparse.Namespace) -> None:
    paths = find_tables(args.inputs, args.pattern)
    tables = [read_potential_table(path) for path in paths]
    names = [sample_name(path, args.inputs) for path in paths]
    if args.species == "concatenated":
        groups: list[str | None] = [None]
    elif args.species == "each":
        groups = list(tables[0].species)
    else:
        groups = [args.species]
    folder: Path = args.output
    stems = {group: f"clusters_{group or 'concatenated'}" for group in groups}
    refuse_overwrite(
        (folder / f"{stem}{suffix}" for stem in stems.values() for suffix in (".csv", ".png")),
        args.force,
    )
    folder.mkdir(parents=True, exist_ok=True)
    for group, stem in stems.items():
        features = feature_matrix(tables, group, args.q_max)
        result = cluster(
            features,
            names,
            n_components=args.components,
            n_clusters=args.clusters,
            standardize=args.standardize,
            seed=args.seed,
        )
        write_csv(folder / f"{stem}.csv", result)
        what = "all species" if group is None else group
        scatter_figure(result, f"v(q) of {what}: {len(names)} runs").savefig(
            folder / f"{stem}.png", dpi=150
        )
        variance = ", ".join(
            f"PC{j + 1} {100 * value:.2f}%" for j, value in enumerate(result.explained)
        )
        print(f"{what}: {len(names)} runs, explained variance {variance}")
        sizes = np.bincount(result.labels, minlength=args.clusters)
        silhouette = "" if result.silhouette is None else f", silhouette {result.silhouette:.3f}"
        print(f"  clusters sizes {' '.join(map(str, sizes))}{silhouette}; wrote {stem}.csv/.png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=description(__doc__))
    parser.add_argument("inputs", type=Path, nargs="+", help="sweep folders and/or table files")
    parser.add_argument(
        "--pattern", default=DEFAULT_PATTERN, help=f"file pattern in folders ({DEFAULT_PATTERN})"
    )
    parser.add_argument(
        "--species",
        default="each",
        help="a species symbol, 'each' (one analysis per species) or 'concatenated'",
    )
    parser.add_argument("--q-max", type=float, help="use q <= this (1/Bohr)")
    parser.add_argument("--components", type=int, default=2, help="PCA components (default 2)")
    parser.add_argument("--clusters", type=int, default=2, help="K-means clusters (default 2)")
    parser.add_argument("--standardize", action="store_true", help="scale each q to unit variance")
    parser.add_argument("--seed", type=int, default=0, help="random seed of PCA/K-means")
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `dpp-cluster-potentials`."""
    return run_tool(build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
