"""The linear learning-rate scaling rule (``lr_reference_batch``), from plain values."""

from __future__ import annotations

import logging

from vidtl.training.lr_scaling import global_batch, linearly_scaled_lr


def test_the_learning_rate_grows_with_the_global_batch(caplog):
    caplog.set_level(logging.INFO)
    assert global_batch(4, devices=2, nodes=3, accumulate=2) == 48
    assert linearly_scaled_lr(1e-3, 8, 4) == 2e-3
    assert "learning rate 0.002 for the global batch of 8 (0.001 at 4)" in caplog.text
    assert linearly_scaled_lr(0.1, 64, 256.0) == 0.025
