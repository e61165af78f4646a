"""SharedBatchPool: worker batches handed over in reused shared memory, never overwritten while
the main process still refers to them."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from vidtl.data.clips.batch_pool import SharedBatchPool
from vidtl.data.clips.batches import ClipItem, ViewsItem
from vidtl.data.clips.collate import collate_clips
from vidtl.data.loading.pooled_loader import PooledDataLoader


class NumberedClips(Dataset):
    """Clip ``i`` is filled with ``i`` (channels-last memory, as the CPU transforms give)."""

    def __init__(self, size: int = 48, views: bool = False) -> None:
        self.size, self.views = size, views

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> ClipItem | ViewsItem:
        shape = (2, 4, 16, 16, 3) if self.views else (4, 16, 16, 3)
        clip = torch.full(shape, i, dtype=torch.uint8).movedim(-1, -3)
        return ViewsItem(clip, i, i + 1000) if self.views else ClipItem(clip, i)


def loader(dataset: Dataset, workers: int = 2, persistent: bool = False) -> PooledDataLoader:
    return PooledDataLoader(dataset, batch_size=4, shuffle=True, num_workers=workers,
                            persistent_workers=persistent,
                            collate_fn=SharedBatchPool(max(workers, 1), slots=3))


@pytest.mark.parametrize("persistent", [False, True])
def test_batches_equal_plain_collation_and_held_batches_are_never_overwritten(persistent):
    dl = loader(NumberedClips(), persistent=persistent)
    held = []
    for epoch in range(3):
        for n, (clips, labels) in enumerate(dl):
            assert clips.shape == (4, 4, 3, 16, 16) and clips.dtype == torch.uint8
            expected = collate_clips([NumberedClips()[int(i)] for i in labels])
            assert torch.equal(clips, expected[0]) and torch.equal(labels, expected[1])
            if n % 3 == 0:
                held.append((clips, labels.clone()))  # kept while later batches arrive
            if epoch == 1 and n == 4:
                break  # an abandoned pass leaves batches in flight
    for clips, labels in held:
        assert all(bool((clips[b] == labels[b]).all()) for b in range(len(labels)))


def test_slots_are_reused_when_batches_are_dropped():
    dl = loader(NumberedClips(size=96), persistent=True)
    addresses = []
    for clips, _ in dl:
        addresses.append(clips.untyped_storage().data_ptr())
    pool = dl.collate_fn
    # 24 batches, most through the 2 workers x 3 slots (a worker that runs ahead while the
    # main process still holds its slots uses fresh memory)
    assert pool.pooled + pool.unpooled == len(addresses) == 24
    assert pool.pooled >= 18 and len(pool._mapped) <= 6
    mapped = {m.data_ptr() for m in pool._mapped.values()}
    assert sum(a in mapped for a in addresses) == pool.pooled


def test_test_views_and_extra_items():
    dl = loader(NumberedClips(views=True))
    seen = []
    for views, labels, videos in dl:
        assert views.shape == (4, 2, 4, 3, 16, 16)
        assert torch.equal(videos, labels + 1000)
        assert all(bool((views[b] == labels[b]).all()) for b in range(len(labels)))
        seen += labels.tolist()
    assert sorted(seen) == list(range(48))


def test_in_the_main_process_the_pool_is_plain_collation():
    dl = loader(NumberedClips(size=8), workers=0)
    clips, labels = next(iter(dl))
    assert not clips.is_shared() and labels.shape == (4,)


def test_the_pin_thread_resolves_pooled_batches(monkeypatch):
    """With ``pin_memory`` PyTorch's pin thread meets the worker's SlotBatch first: it must come
    out as the plain batch, pinned (pinning itself needs a GPU; here it is a copy)."""
    from torch.utils.data import DataLoader
    from torch.utils.data._utils.pin_memory import pin_memory

    from vidtl.data.clips.batch_pool import SlotBatch

    pinned = []

    def fake_pin(tensor, *args, **kwargs):
        pinned.append(tensor.shape)
        return tensor.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    pool = SharedBatchPool(1, slots=4)
    pool.begin()
    raw = DataLoader(NumberedClips(size=12), batch_size=4, num_workers=1, collate_fn=pool)
    for sent in raw:
        assert isinstance(sent, SlotBatch)
        clips, labels = pin_memory(sent)
        assert clips.shape == (4, 4, 3, 16, 16)
        assert all(bool((clips[b] == labels[b]).all()) for b in range(4))
    assert pool.pooled == 3 and (4, 4, 3, 16, 16) in pinned
