"""Temporal modules: combine per-frame features ``(B, T, D)`` into one clip feature ``(B, D')``.

A temporal module is any ``nn.Module`` with that contract and an ``out_features`` attribute,
constructed as ``cls(in_features=D, num_frames=T, **options)``. Configs reach one by
``_target_`` (with ``_partial_: true``), so new modules need no change to vidtl.
"""

from __future__ import annotations

import torch
from torch import nn


class AvgPool(nn.Module):
    """TSN's consensus: the mean over time (order-blind)."""

    def __init__(self, in_features: int, num_frames: int | None = None) -> None:
        super().__init__()
        self.out_features = in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=1)


class MaxPool(nn.Module):
    """The maximum over time of each feature (order-blind)."""

    def __init__(self, in_features: int, num_frames: int | None = None) -> None:
        super().__init__()
        self.out_features = in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.amax(dim=1)


class AttentionPool(nn.Module):
    """Learned attention pooling: a softmax over time of a small scoring network.

    Weighs frames by content, not position, so it is order-blind like :class:`AvgPool`.
    """

    def __init__(self, in_features: int, num_frames: int | None = None, hidden: int = 256) -> None:
        super().__init__()
        self.out_features = in_features
        self.score = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        weights = self.score(features).softmax(dim=1)  # (B, T, 1)
        return (weights * features).sum(dim=1)


class TransformerEncoder(nn.Module):
    """A small transformer over the frame features, with learned positional embeddings.

    ``pooling='cls'`` reads a learned class token, ``'mean'`` averages the outputs. Frames are
    projected to ``dim`` first; ``num_frames`` bounds the clip length it accepts.
    """

    def __init__(self, in_features: int, num_frames: int, dim: int = 256, depth: int = 2,
                 heads: int = 4, dropout: float = 0.1, pooling: str = "cls") -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.out_features = dim
        self.pooling = pooling
        self.max_frames = num_frames
        self.project = nn.Linear(in_features, dim)
        extra = 1 if pooling == "cls" else 0
        self.position = nn.Parameter(torch.zeros(1, num_frames + extra, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        if pooling == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        frames = features.shape[1]
        if frames > self.max_frames:
            raise ValueError(f"clip of {frames} frames; this transformer was built for at most "
                             f"{self.max_frames} (data.num_frames)")
        tokens = self.project(features)
        if self.pooling == "cls":
            tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = self.encoder(tokens + self.position[:, : tokens.shape[1]])
        pooled = tokens[:, 0] if self.pooling == "cls" else tokens.mean(dim=1)
        return self.norm(pooled)


class RecurrentPool(nn.Module):
    """An LSTM or GRU over time; the clip feature is the final hidden state (both directions
    concatenated when ``bidirectional``)."""

    def __init__(self, in_features: int, num_frames: int | None = None, hidden: int = 256,
                 layers: int = 1, cell: str = "lstm", bidirectional: bool = False) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        recurrent = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = recurrent(in_features, hidden, num_layers=layers, batch_first=True,
                             bidirectional=bidirectional)
        self.out_features = hidden * (2 if bidirectional else 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(features)
        hidden = state[0] if isinstance(state, tuple) else state  # (layers * dirs, B, H)
        directions = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(hidden[-directions:]), dim=-1)
