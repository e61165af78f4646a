"""LoRA (Hu et al., 2021) on a backbone's weights, through the ``peft`` library.

:func:`apply_lora` injects low-rank adapters (``peft.inject_adapter_in_model``) into the
attention and MLP projections of every ViT block (every linear layer under ``attn.`` and
``mlp.``: ``qkv``, ``proj``, ``fc1``, ``fc2`` in timm's ViT) or the pointwise (1x1)
convolutions of every CNN block, unless ``targets`` names other modules. peft starts
``lora_B`` at zero, so the adapted backbone computes the image model's features at step 0.
:func:`merge_lora` folds the adapters back into the weights (``W + B A * alpha / r``), leaving
plain layers for export: no extra cost at inference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from torch import nn

from vidtl.core.trusted_targets import rebuildable
from vidtl.models.adaptable_blocks import adaptable_blocks
from vidtl.models.backbones import Backbone

log = logging.getLogger(__name__)


@rebuildable("model")
@dataclass(frozen=True)
class LoraSettings:
    """``model/lora=default``: rank, scale (``alpha / rank``), dropout and, optionally, the
    module names (relative to the backbone model) to adapt."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] | None = None


def default_lora_targets(backbone: Backbone) -> list[str]:
    """Attention and MLP projections of ViT blocks; 1x1 convolutions of CNN blocks."""
    family, blocks = adaptable_blocks(backbone, method="LoRA")
    names = []
    for block in blocks:
        for name, module in block.module.named_modules():
            if family == "vit":  # qkv, proj, fc1, fc2; q/k/v or SwiGLU layers where they are
                wanted = name.startswith(("attn.", "mlp.")) and isinstance(module, nn.Linear)
            else:
                wanted = (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
                          and module.groups == 1)
            if wanted:
                names.append(f"{block.name}.{name}")
    return names


def apply_lora(backbone: Backbone, settings: LoraSettings) -> int:
    """Inject LoRA layers into ``backbone`` in place; return how many layers got one."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = list(settings.targets) if settings.targets else default_lora_targets(backbone)
    if not targets:
        raise ValueError(f"LoRA found no layer to adapt in backbone {backbone.name!r}")
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha,
                        lora_dropout=settings.dropout, target_modules=targets)
    inject_adapter_in_model(config, backbone.model)
    log.info("LoRA rank %d on %d layers of %s", settings.rank, len(targets), backbone.name)
    return len(targets)


def merge_lora(model: nn.Module) -> int:
    """Fold every LoRA layer in ``model`` into its base layer, in place; return how many."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        return 0
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in layers:
        layer.merge()
        parent, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attribute,
                layer.get_base_layer())
    return len(layers)
