"""Data parallelism over (system, k-point) items on Lightning's DDP machinery.

`KPointDDPStrategy` is Lightning's DDPStrategy (launchers, torchrun and SLURM environments,
process groups, rank-zero logging) without PyTorch's DistributedDataParallel wrapper. Each
rank evaluates its own share of the k-points, back-propagating each batch; the module then
sums the gradients over ranks once before the optimiser step. That gives the full-batch
step exactly (a sum, not a mean over ranks), allows any number of backward passes per step,
and needs no padding when the ranks hold different numbers of k-points.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.overrides.distributed import _sync_module_states
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import rank_zero_only

from dpp.ranks import distributed
from dpp.threads import apply_threads, parse_threads, thread_budget


class KPointDDPStrategy(DDPStrategy):
    """DDP over k-points with gradients summed explicitly (see module docstring).

    `process_group_backend` None picks nccl on GPUs and gloo on CPUs. On CPU every rank
    uses its share of `num_threads` (0 = automatic, see `dpp.threads`), so the ranks of a
    node do not oversubscribe its cores."""

    strategy_name = "ddp_kpoints"

    def __init__(self, *args: Any, num_threads: int | str = "auto", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_threads = parse_threads(num_threads)

    def setup_environment(self) -> None:
        super().setup_environment()
        if self.root_device.type == "cpu":
            apply_threads(thread_budget(self.num_threads, processes=self.num_processes))

    def configure_ddp(self) -> None:
        """Keep the module unwrapped; start every rank from rank 0's parameters and buffers."""
        if distributed():
            _sync_module_states(self.model)


def is_global_zero() -> bool:
    """Global rank 0: from the launcher's environment (RANK, LOCAL_RANK, SLURM_PROCID) until
    the Trainer sets the rank up, then from the strategy; True in a single process."""
    return rank_zero_only.rank == 0
