"""Distributed training through PyTorch's own launcher (``torchrun``).

``torchrun --nproc_per_node=N -m fer_nla train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init_distributed` then joins the process group (NCCL on CUDA, Gloo on
CPU). Without those variables everything runs as a single process and the helpers below are
identities, so the engine has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """The job layout torchrun put in the environment (a single process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes; NCCL for CUDA devices, Gloo otherwise."""
    info = env_dist_info()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], *, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (as float64)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_reduce_tensor(tensor: torch.Tensor, *, op: str = "sum") -> torch.Tensor:
    """Sum (``op="sum"``) or maximum (``op="max"``) of ``tensor`` over all ranks, in place
    (returned for chaining); unchanged in a single process."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor


def gather_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenate each rank's arrays (in rank order) on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return arrays
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, arrays)
    return {key: np.concatenate([part[key] for part in gathered]) for key in arrays}


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
