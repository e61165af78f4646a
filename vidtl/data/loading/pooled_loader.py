"""A DataLoader whose workers hand batches over through a :class:`SharedBatchPool`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from vidtl.data.clips.batch_pool import SharedBatchPool


class PooledDataLoader(DataLoader):
    """A :class:`DataLoader` that, when its ``collate_fn`` is a :class:`SharedBatchPool`
    (:attr:`batch_pool`), starts each pass with :meth:`SharedBatchPool.begin` and yields plain
    batches; with any other ``collate_fn`` it is a plain DataLoader."""

    @property
    def batch_pool(self) -> SharedBatchPool | None:
        pool = self.collate_fn
        return pool if isinstance(pool, SharedBatchPool) else None

    def __iter__(self) -> Iterator[Any]:
        pool = self.batch_pool
        if pool is None or self.num_workers == 0:
            return super().__iter__()
        pool.begin(new_workers=not (self.persistent_workers and self._iterator is not None))
        return map(pool.resolve, super().__iter__())
