"""Run one function over many items in worker processes, with a progress bar and clear failures.

nnU-Net's pools hang or print "a background worker is 6 feet under" when a worker is killed; here a dead worker
(e.g. out of memory) raises ``WorkerDiedError`` naming the item it was processing, and an exception inside a
worker is re-raised in the parent with that item's name.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator, Sequence

from tqdm import tqdm

__all__ = ["WorkerDiedError", "WorkerPool", "default_num_processes"]


class WorkerDiedError(RuntimeError):
    """A worker process ended abnormally (killed by the OS, usually out of memory)."""


def default_num_processes() -> int:
    """``nnUNet_def_n_proc`` when set, else the number of usable CPUs (at most 8, as nnU-Net's default)."""
    if os.environ.get("nnUNet_def_n_proc"):
        return max(1, int(os.environ["nnUNet_def_n_proc"]))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def _init_worker() -> None:
    # one process per core: keep the libraries inside each worker single-threaded
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _noop() -> None:
    return None


def _start_method() -> str:
    """``fork`` on Linux while this process runs no other thread (workers then start instantly, without
    re-importing torch and MONAI), else ``spawn``; ``MONAI_NNUNET_START_METHOD`` overrides."""
    forced = os.environ.get("MONAI_NNUNET_START_METHOD")
    if forced:
        return forced
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "spawn"


class WorkerPool:
    """A reusable pool of worker processes (or in-process execution for ``num_processes <= 1``).

    Use as a context manager; ``map`` can be called several times so the workers start only once per run. The
    workers are started on entry, before any progress-bar or other thread exists.

    Args:
        num_processes: number of workers; 0 or 1 runs everything in the calling process.
        start_method: ``"fork"``, ``"spawn"`` or ``"forkserver"``; default: see ``_start_method``.
    """

    def __init__(self, num_processes: int, start_method: str | None = None):
        if num_processes < 0:
            raise ValueError(f"num_processes must be >= 0, got {num_processes}")
        self.num_processes = num_processes
        self.start_method = start_method
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> "WorkerPool":
        if self.num_processes > 1:
            method = self.start_method or _start_method()
            self._executor = ProcessPoolExecutor(
                self.num_processes, mp_context=multiprocessing.get_context(method), initializer=_init_worker
            )
            self._executor.submit(_noop).result()  # launch the workers now
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def map(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        names: Sequence[str],
        desc: str,
        extra_args: Iterable[Any] = (),
        show_progress: bool = True,
    ) -> Iterator[tuple[str, Any]]:
        """Yields ``(name, fn(item, *extra_args))`` as results complete (not in input order).

        Raises:
            WorkerDiedError: a worker process died; the message names an item that was in flight.
            RuntimeError: ``fn`` raised for an item; the message names it and chains the original error.
        """
        extra_args = tuple(extra_args)
        bar = tqdm(total=len(items), desc=desc, disable=not show_progress, dynamic_ncols=True)
        try:
            if self._executor is None:
                for item, name in zip(items, names):
                    try:
                        result = fn(item, *extra_args)
                    except Exception as e:
                        raise RuntimeError(f"{desc}: failed on {name}: {e}") from e
                    bar.update()
                    yield name, result
                return
            # keep a bounded number of tasks in flight so results (arrays) do not pile up in memory
            pending: dict[Future, str] = {}
            queue = list(zip(items, names))[::-1]
            limit = 2 * self.num_processes
            while queue or pending:
                while queue and len(pending) < limit:
                    item, name = queue.pop()
                    pending[self._executor.submit(fn, item, *extra_args)] = name
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    name = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool as e:
                        raise WorkerDiedError(
                            f"{desc}: a worker process died while processing {name} (often the OS killing it for "
                            f"lack of memory); try fewer processes with -np"
                        ) from e
                    except Exception as e:
                        raise RuntimeError(f"{desc}: failed on {name}: {e}") from e
                    bar.update()
                    yield name, result
        finally:
            bar.close()
