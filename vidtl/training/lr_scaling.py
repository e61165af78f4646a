"""The linear learning-rate scaling rule (``lr_reference_batch``): the learning rate grows with
the global batch."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def global_batch(batch_size: int, devices: int, nodes: int, accumulate: int) -> int:
    """The clips of one optimizer step: the batch of each process, of every device of every
    node, times the batches accumulated."""
    return batch_size * devices * nodes * accumulate


def linearly_scaled_lr(lr: float, batch: int, reference_batch: float) -> float:
    """``lr``, set for a global batch of ``reference_batch``, scaled linearly to ``batch``."""
    scaled = float(lr) * batch / float(reference_batch)
    log.info("learning rate %g for the global batch of %d (%g at %s)", scaled, batch, lr,
             reference_batch)
    return scaled
