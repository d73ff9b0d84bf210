"""Run independent tasks in worker processes (or in this one) with a tqdm progress bar."""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm


def single_thread_math(threads: int = 1) -> None:
    """Keep numeric libraries to ``threads`` threads in a worker (unless the user set it)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def imap_progress(func: Callable[[Any], Any], tasks: list, workers: int, initializer: Callable[..., None],
                  initargs: tuple = (), desc: str = "", unit: str = "clip", progress: bool = True,
                  initial: int = 0, total: int | None = None) -> Iterator[Any]:
    """Yield ``func(task)`` for every task as they finish (any order when ``workers > 1``), advancing a bar.

    ``initializer(*initargs)`` runs once per worker (in this process when ``workers <= 1``); workers are spawned
    (clean interpreters) and torn down when the generator ends or is closed.
    """
    bar = tqdm(total=len(tasks) + initial if total is None else total, initial=initial, unit=unit, desc=desc,
               disable=not progress, dynamic_ncols=True)
    pool = None
    finished = False
    try:
        if workers > 1 and len(tasks) > 1:
            pool = mp.get_context("spawn").Pool(min(workers, len(tasks)), initializer=initializer, initargs=initargs)
            it: Iterable = pool.imap_unordered(func, tasks)
        else:
            initializer(*initargs)
            it = map(func, tasks)
        for res in it:
            yield res
            bar.update(1)
        finished = True
    finally:
        bar.close()
        if pool is not None:
            # all done: let the workers exit on their own (killing them leaks their semaphores, which Python then
            # reports at exit); stopped early (an error, Ctrl-C, the caller closed the generator): kill them
            if finished:
                pool.close()
            else:
                pool.terminate()
            pool.join()
