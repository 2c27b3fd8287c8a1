"""Data parallelism over ``torch.distributed`` ranks, as launched by ``torchrun`` (one process per GPU or CPU slot).

A run under ``torchrun --nproc-per-node N -m lrt COMMAND ...`` sees ``WORLD_SIZE``/``RANK`` in its environment;
:func:`setup` then joins the process group (``nccl`` when the device is a GPU, ``gloo`` on CPU) with a timeout, so a
rank that dies makes the others fail with :class:`~lrt.errors.DistributedError` instead of hanging on a collective.
Work is split by item index (``index % world == rank``: the union over ranks is the single-process stream),
statistics are merged with :meth:`~lrt.stats.moments.MomentStats.all_reduce`, and rank 0 alone shows progress and
writes. Without ``torchrun`` every helper here is the single-process identity.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Iterator

from .errors import DistributedError

DEFAULT_TIMEOUT_S = 300


def _dist():
    import torch.distributed as dist

    return dist


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or any launcher) with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank as the launcher set it (0 without ``torchrun``), known before the group is joined."""
    return int(os.environ.get("RANK", "0"))


def active() -> bool:
    """Whether a process group of more than one rank is initialised."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return _dist().get_rank() if active() else 0


def world() -> int:
    return _dist().get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that shows progress and writes outputs."""
    return rank() == 0


def setup(device: str = "cpu", timeout_s: float | None = None) -> bool:
    """Join the process group when launched with several ranks (idempotent); returns whether one is active.
    ``LRT_DIST_TIMEOUT`` (seconds, default 300) bounds every collective."""
    if not launched():
        return False
    dist = _dist()
    if not dist.is_initialized():
        timeout = timedelta(seconds=float(timeout_s or os.environ.get("LRT_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        if backend == "nccl":
            import torch

            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend, timeout=timeout)
    return active()


def teardown() -> None:
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def mine(index: int) -> bool:
    """Whether this rank handles item ``index`` of a stream (round robin)."""
    return index % world() == rank()


@contextlib.contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failed or timed-out collective into one clear error naming what was being exchanged."""
    try:
        yield
    except DistributedError:
        raise
    except Exception as e:          # gloo/nccl raise RuntimeError or DistBackendError subclasses
        raise DistributedError(
            f"rank {rank()} of {world()} could not {what}: another rank died or stopped answering ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else 'no message'}); see that rank's log, fix it and rerun "
            "(with --resume where the command checkpoints)") from None


def all_reduce_stats(*stats) -> None:
    """Merge each :class:`~lrt.stats.moments.MomentStats` (``None`` skipped) over every rank, in place."""
    if not active():
        return
    with collective("merge the statistics"):
        for s in stats:
            if s is not None:
                s.all_reduce()


def sum_int(value: int) -> int:
    """The sum of an integer over every rank."""
    if not active():
        return value
    import torch

    t = torch.tensor([int(value)], dtype=torch.float64)
    with collective("sum a count"):
        _dist().all_reduce(t)
    return int(round(float(t[0])))


def gather(obj) -> list:
    """Every rank's ``obj`` (picklable, small: a row sample, a tally), in rank order, on every rank."""
    if not active():
        return [obj]
    out = [None] * world()
    with collective("gather results"):
        _dist().all_gather_object(out, obj)
    return out


def broadcast(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    with collective("receive a value from rank 0"):
        _dist().broadcast_object_list(box, src=src)
    return box[0]


def barrier(what: str = "wait for every rank") -> None:
    if active():
        with collective(what):
            _dist().barrier()


def min_int(value: int) -> int:
    """The minimum of an integer over every rank."""
    if not active():
        return value
    import torch

    t = torch.tensor([float(value)], dtype=torch.float64)
    with collective("agree on a count"):
        _dist().all_reduce(t, op=_dist().ReduceOp.MIN)
    return int(t[0])


def average_gradients(params) -> None:
    """Replace each parameter's gradient by its mean over the ranks (data-parallel training)."""
    if not active():
        return
    n = world()
    with collective("all-reduce the gradients"):
        for p in params:
            if p.grad is not None:
                _dist().all_reduce(p.grad)
                p.grad /= n


def max_tensor(t) -> None:
    """In place: the elementwise maximum of ``t`` over every rank."""
    if active():
        with collective("all-reduce a tensor"):
            _dist().all_reduce(t, op=_dist().ReduceOp.MAX)


def broadcast_tensors(tensors, src: int = 0) -> None:
    """In place: rank ``src``'s values of ``tensors`` on every rank."""
    if active():
        with collective("receive the initial parameters from rank 0"):
            for t in tensors:
                _dist().broadcast(t, src=src)
