"""What each process of a multi-process run reads (vidtl.data.loading.rank_shares): its own
slice of one seeded epoch order in training, resumable; a strided, unpadded share in
evaluation. The runs themselves, on two simulated nodes, are in test_multi_node.py."""

from __future__ import annotations

import logging

import pytest
from torch.utils.data import DistributedSampler

from vidtl.core.errors import UserError
from vidtl.data.loading.rank_shares import EvaluationShare, RankShare, check_enough
from vidtl.data.loading.resumable import (
    EpochBalancedSampler,
    EpochShuffleSampler,
    ResumableDataLoader,
)


def shares(world_size: int) -> list[RankShare]:
    return [RankShare(rank, world_size) for rank in range(world_size)]


def test_training_slices_split_one_epoch_order_without_repeats():
    samplers = [EpochShuffleSampler(31, seed=3, share=s) for s in shares(2)]
    for epoch in (0, 1):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        parts = [list(sampler) for sampler in samplers]
        assert [len(p) for p in parts] == [15, 15] == [len(s) for s in samplers]
        assert not set(parts[0]) & set(parts[1])  # no video on both processes
        assert parts[0] + parts[1] == samplers[0].order(epoch)[:30]  # one order, sliced
    assert list(samplers[0]) != samplers[0].order(0)[:15]  # a new order each epoch
    # Lightning leaves a DistributedSampler as it is (no padding wrapper around it)
    assert all(isinstance(s, DistributedSampler) for s in samplers)


def test_a_resumed_slice_skips_what_this_process_had_read():
    sampler = EpochShuffleSampler(20, seed=0, share=RankShare(1, 2))
    sampler.set_epoch(2)
    whole = list(sampler)
    sampler.skip_once(epoch=2, items=4)
    assert list(sampler) == whole[4:]


def test_a_loader_position_from_another_number_of_processes_restarts_the_epoch(caplog):
    def loader(world_size: int) -> ResumableDataLoader:
        return ResumableDataLoader(list(range(16)), batch_size=2, sampler=EpochShuffleSampler(
            16, seed=0, share=RankShare(0, world_size)))

    two = loader(2)
    iterator = iter(two)
    next(iterator)
    state = two.state_dict()
    assert state == {"epoch": 0, "batches": 1, "finished": False, "world_size": 2, "seed": 0}
    same = loader(2)
    same.load_state_dict(state)
    assert len(list(same)) == 3  # 4 batches a process, one read before
    other = loader(1)
    with caplog.at_level(logging.WARNING):
        other.load_state_dict(state)
    assert "saved by 2 processes and this run has 1" in caplog.text
    assert len(list(other)) == 8  # the whole epoch again


def test_balanced_sampling_is_sliced_too():
    labels = [0] * 12 + [1] * 4
    parts = [list(EpochBalancedSampler(labels, seed=1, share=s)) for s in shares(2)]
    whole = EpochBalancedSampler(labels, seed=1).order(0)
    assert parts[0] + parts[1] == whole


def test_evaluation_shares_cover_every_item_once():
    parts = [list(EvaluationShare(15, s)) for s in shares(2)]
    assert parts == [list(range(0, 15, 2)), list(range(1, 15, 2))]
    assert sorted(parts[0] + parts[1]) == list(range(15))
    assert list(EvaluationShare(5, RankShare())) == list(range(5))


def test_fewer_items_than_processes(caplog):
    with caplog.at_level(logging.WARNING):
        assert list(EvaluationShare(2, RankShare(3, 4))) == [1]
    assert "evaluates the last one again" in caplog.text
    with pytest.raises(UserError, match="3 training videos cannot be shared by 4 processes"):
        check_enough(3, RankShare(0, 4), "training videos")


def test_a_loader_position_keeps_the_order_of_a_run_without_a_seed():
    """With seed=null each launch has another torch seed: the resumed epoch must still be the
    interrupted run's order, or it would skip items of another shuffle."""
    first = ResumableDataLoader(list(range(12)), batch_size=2,  # torch seeds reach 2**64
                                sampler=EpochShuffleSampler(12, seed=2**63 + 1234))
    iterator = iter(first)
    seen = [next(iterator).tolist() for _ in range(2)]
    resumed = ResumableDataLoader(list(range(12)), batch_size=2,
                                  sampler=EpochShuffleSampler(12, seed=99))
    resumed.load_state_dict(first.state_dict())
    rest = [batch.tolist() for batch in resumed]
    assert sorted(x for batch in seen + rest for x in batch) == list(range(12))
    crafted = {**first.state_dict(), "finished": "no", "world_size": True}
    odd = ResumableDataLoader(list(range(12)), batch_size=2,
                              sampler=EpochShuffleSampler(12, seed=99))
    odd.load_state_dict(crafted)  # not a count of processes: the epoch restarts
    assert len(list(odd)) == 6


def test_the_mean_loss_weighs_batches_by_their_clips_and_keeps_nan():
    """Gathered as two sums (exact for uneven shares); a NaN batch is not dropped (torchmetrics'
    MeanMetric drops it, or ignores the weights when told to keep it)."""
    import torch

    from vidtl.training.mean_loss import MeanLoss

    loss = MeanLoss()
    loss.update(torch.tensor(2.0), 4)
    loss.update(torch.tensor(3.0), 3)
    assert loss.compute().item() == pytest.approx(17 / 7)
    loss.update(torch.tensor(float("nan")), 1)
    assert torch.isnan(loss.compute())


def test_the_mean_loss_takes_any_loss_shape_and_keeps_float64_sums():
    """A compute_loss override may return one loss per clip; precision=bf16-true converts the
    module, not these sums."""
    import torch

    from vidtl.training.mean_loss import MeanLoss

    loss = MeanLoss().to(dtype=torch.bfloat16)
    loss.update(torch.tensor([2.0, 3.0]), 2)
    for _ in range(600):
        loss.update(torch.tensor(1.0), 4)
    assert loss.total.dtype == torch.float64
    assert loss.compute().item() == pytest.approx((2.5 * 2 + 2400) / 2402)
