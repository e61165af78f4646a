"""LoRA (Hu et al., 2021) on a backbone's weights, through the ``peft`` library.

:func:`apply_lora` injects low-rank adapters (``peft.inject_adapter_in_model``) into the
attention and MLP projections of every ViT block (every linear layer of a module of a class
declared in :data:`VIT_PROJECTION_OWNERS`: ``qkv``, ``proj``, ``fc1``, ``fc2`` in timm's ViT)
or the pointwise (1x1) convolutions of every CNN block, unless ``targets`` names other
modules. peft starts ``lora_B`` at zero, so the adapted backbone computes the image model's
features at step 0.
:func:`merge_lora` folds the adapters back into the weights (``W + B A * alpha / r``), leaving
plain layers for export: no extra cost at inference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from torch import nn

from vidtl.core.trusted_targets import rebuildable
from vidtl.models.adaptable_blocks import adaptable_blocks, declared_class
from vidtl.models.backbones import Backbone

log = logging.getLogger(__name__)

# The attention and MLP classes of ViT blocks whose linear layers LoRA adapts, by module and
# name (timm loads lazily; one the installed timm lacks is left out).
VIT_PROJECTION_OWNERS = (
    ("timm.models.vision_transformer", "Attention"),  # ViT, DeiT, CLIP, DINOv2, SigLIP
    ("timm.layers", "DiffAttention"),
    ("timm.layers", "AttentionRope"),
    ("timm.models.eva", "EvaAttention"),
    ("timm.models.beit", "Attention"),
    ("timm.layers", "Mlp"),
    ("timm.layers", "GluMlp"),  # SwiGLUPacked (DINOv2 giant)
    ("timm.layers", "SwiGLU"),  # EVA-02
    ("timm.layers", "GatedMlp"),
)


@rebuildable("model")
@dataclass(frozen=True)
class LoraSettings:
    """``model/lora=default``: rank, scale (``alpha / rank``), dropout and, optionally, the
    module names (relative to the backbone model) to adapt."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] | None = None


@lru_cache(maxsize=1)
def vit_projection_owners() -> tuple[type[nn.Module], ...]:
    """The declared attention and MLP classes (:data:`VIT_PROJECTION_OWNERS`) installed."""
    declared = (declared_class(module, name) for module, name in VIT_PROJECTION_OWNERS)
    return tuple(cls for cls in declared if cls is not None)


def _lora_layers(block: nn.Module, family: str) -> list[tuple[str, nn.Module]]:
    """``(name in block, layer)`` of the layers LoRA adapts in one block, in block order."""
    if family == "vit":  # qkv, proj, fc1, fc2; q/k/v or SwiGLU layers where they are
        owners = vit_projection_owners()
        return [(f"{owner_name}.{name}", layer)
                for owner_name, owner in block.named_modules() if isinstance(owner, owners)
                for name, layer in owner.named_modules() if isinstance(layer, nn.Linear)]
    return [(name, layer) for name, layer in block.named_modules()
            if isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1)
            and layer.groups == 1]


def default_lora_targets(backbone: Backbone) -> list[str]:
    """Linear layers of the attention and MLP of ViT blocks; 1x1 convolutions of CNN blocks.
    Found by type; their names are what peft's ``target_modules`` takes."""
    family, blocks = adaptable_blocks(backbone, method="LoRA")
    return [f"{block.name}.{name}" for block in blocks
            for name, _ in _lora_layers(block.module, family)]


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


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The adapter weights of every LoRA layer in ``model``: those peft declares for its
    ``LoraLayer`` type (``adapter_layer_names``: ``lora_A``, ``lora_B``, ...)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    return [parameter for layer in model.modules() if isinstance(layer, LoraLayer)
            for part in layer.adapter_layer_names
            for parameter in getattr(layer, part).parameters()]
