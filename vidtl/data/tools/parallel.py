"""Running one function over many videos in worker processes, with a progress bar."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_videos(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int = 1,
    description: str = "",
    progress: bool = True,
) -> Iterator[tuple[Item, Result | Exception]]:
    """Yield ``(item, function(item))`` as each finishes, or ``(item, exception)`` when it
    raised: one bad video never stops the others. ``function`` must be picklable (a module-level
    function or a ``functools.partial`` of one) when ``workers > 1``."""
    items = list(items)
    with tqdm(total=len(items), desc=description, unit="video", disable=not progress) as bar:
        if workers <= 1:
            for item in items:
                try:
                    result: Result | Exception = function(item)
                except Exception as error:
                    result = error
                bar.update()
                yield item, result
            return
        context = multiprocessing.get_context("spawn")  # never fork a process that runs torch
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(function, item): item for item in items}
            for future in as_completed(futures):
                error = future.exception()
                bar.update()
                yield futures[future], error if error is not None else future.result()
