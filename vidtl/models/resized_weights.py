"""A pretrained tensor that depends on the image size (a ViT's position embeddings, a Swin's
relative position bias tables) fitted to a model built for another size, as timm does when it
loads its own pretrained weights: through the ``checkpoint_filter_fn`` of the timm module that
defines the model. A checkpoint trained at 224 px then loads into the same ViT at 112 px."""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import nn


def _timm_filter(module: nn.Module) -> Callable[..., dict] | None:
    """The ``checkpoint_filter_fn`` of the timm module that defines ``module``'s class.

    Where the class was defined is its origin, not a guess from a name: only a function of
    timm's own model modules is called (the one timm's loader gives that model's weights)."""
    defined_in = type(module).__module__
    if not defined_in.startswith("timm.models."):
        return None
    found = getattr(sys.modules.get(defined_in), "checkpoint_filter_fn", None)
    return found if callable(found) else None


def fit_weight(model: nn.Module, key: str, value: torch.Tensor,
               expected: torch.Size) -> torch.Tensor | None:
    """``value`` (stored under ``key``, a name inside ``model``) fitted to ``expected`` by the
    filter of the outermost timm model on ``key``'s path; ``None`` when there is none or it
    does not give that shape."""
    parts = key.split(".")
    for cut in range(len(parts)):
        try:
            owner = model.get_submodule(".".join(parts[:cut])) if cut else model
        except AttributeError:
            return None
        filter_fn = _timm_filter(owner)
        if filter_fn is None:
            continue
        name = ".".join(parts[cut:])
        try:
            fitted = filter_fn({name: value}, owner).get(name)
        except Exception:  # a tensor the filter cannot convert: reported as mis-shaped
            return None
        return fitted if isinstance(fitted, torch.Tensor) and fitted.shape == expected else None
    return None
