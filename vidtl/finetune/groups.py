"""A backbone's parameters split into stages, from the input (stem) to the output."""

from __future__ import annotations

from torch import nn

from vidtl.models.backbones import Backbone


def backbone_stages(backbone: Backbone) -> list[tuple[str, list[str]]]:
    """``[(stage name, parameter names relative to backbone.model)]``, input stage first.

    timm models use their own layer groups (``group_matcher(coarse=True)``: stem, each block
    stage, head); other models (torchvision) are split at their top-level children.
    """
    model = backbone.model
    if hasattr(model, "group_matcher"):
        from timm.models import group_parameters

        grouped = group_parameters(model, model.group_matcher(coarse=True))
        stages = [(f"stage{i}", list(names)) for i, names in enumerate(grouped.values())]
    else:
        stages = []
        for child_name, child in model.named_children():
            names = [f"{child_name}.{n}" for n, _ in child.named_parameters()]
            if names:
                stages.append((child_name, names))
    covered = {n for _, names in stages for n in names}
    missing = [n for n, _ in model.named_parameters() if n not in covered]
    if missing:
        stages.append(("rest", missing))
    return stages


def batchnorm_layers(module: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """Every BatchNorm layer of ``module`` with its name, in registration (input-first) order."""
    return [(n, m) for n, m in module.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]
