"""Temporal modules that work inside the backbone (TSM today; adapters in ViT and CNN blocks).

The clip length reaches them by one explicit route: the data config's ``num_frames`` is given
to the temporal module's constructor (``cls(in_features=D, num_frames=T, ...)``), the module
keeps it and uses it in every hook or block it adds to the backbone. The classifier checks that
each batch has clips of that length, so a mismatch is an error, never a silent misfold.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from vidtl.models.backbones import Backbone


@runtime_checkable
class InBackboneTemporal(Protocol):
    """A temporal module that edits the backbone: built for clips of ``num_frames`` frames,
    attached once (hooks or wrapped blocks) by :class:`~vidtl.models.classifier.VideoClassifier`.
    """

    num_frames: int

    def attach(self, backbone: Backbone) -> None: ...
