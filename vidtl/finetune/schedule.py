"""Fine-tuning schedules: which parts of the network learn, when, and how fast.

Every parameter group is built once, by name, when the optimizer is made: one per backbone
stage (``backbone.<stage>``), ``temporal`` and ``head``. Schedules never add groups; they act at
epoch boundaries, from the epoch number alone, so a resumed run is in exactly the state an
uninterrupted run would be:

- a stage that is *frozen* keeps ``requires_grad`` (so DDP's reducer sees the same parameters all
  run long) but its gradients are dropped before each optimizer step, so it is not updated (no
  weight decay, no momentum), and its BatchNorm layers run in eval mode (statistics frozen);
- ``linear_probe`` freezes the backbone for good: there ``requires_grad`` is switched off before
  training starts, so no backward pass runs through it;
- ``adapter`` (parameter-efficient tuning) freezes the backbone the same way except its
  adaptation parameters: the weights of its LoRA layers (peft's ``LoraLayer``) and, with
  ``train_norms``, its normalisation layers. Adapters that live in the temporal module
  (ST-Adapter, AIM, EVL) learn with it.

Options for any mode: ``backbone_lr_scale`` (discriminative learning rates), ``layer_decay``
(each stage below the top gets this factor once more), ``partial_bn`` (TSN: every BatchNorm but
the first keeps its statistics) and ``freeze_bn`` (all do). With ``adapter``,
``adapter_lr_scale`` multiplies the learning rate of the temporal module's adapters
(ST-Adapter, AIM, EVL) and ``lora_lr_scale`` that of what learns inside the frozen backbone
(LoRA layers, trained norms); the head learns at the optimizer's rate. Zero-initialised
adapters start as the identity and, at the head's rate, learned frame order in about three
times the epochs full fine-tuning needs; LoRA layers (already scaled by alpha / rank) did worse
at 3x than at 1x (docs/benchmarks.md, "Adapters in the full fine-tuning budget").
"""

from __future__ import annotations

from typing import Any

from torch import nn

from vidtl.finetune.groups import backbone_stages, batchnorm_layers
from vidtl.models.lora import lora_parameters

MODES = ("full", "linear_probe", "gradual_unfreeze", "adapter")
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


class FinetuneSchedule:
    """A fine-tuning schedule (see the module docstring); the module applies it through
    :meth:`prepare`, :meth:`param_groups`, :meth:`apply_batchnorm_modes` (every train epoch
    start) and :meth:`drop_frozen_gradients` (before every optimizer step).

    ``unfreeze_epochs[i]`` is the epoch at which the i-th backbone stage counted from the top is
    unfrozen (``gradual_unfreeze``); stages past the end of the list stay frozen.
    """

    def __init__(
        self,
        mode: str = "full",
        unfreeze_epochs: list[int] | tuple[int, ...] = (),
        backbone_lr_scale: float = 1.0,
        layer_decay: float = 1.0,
        partial_bn: bool = False,
        freeze_bn: bool = False,
        train_norms: bool = False,
        adapter_lr_scale: float = 1.0,
        lora_lr_scale: float = 1.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fine-tuning mode {mode!r}; expected one of {MODES}")
        if mode == "gradual_unfreeze" and not unfreeze_epochs:
            raise ValueError(
                "gradual_unfreeze needs unfreeze_epochs (one epoch per stage, top first)"
            )
        for name, value in (("adapter_lr_scale", adapter_lr_scale),
                            ("lora_lr_scale", lora_lr_scale)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if list(unfreeze_epochs) != sorted(unfreeze_epochs):
            raise ValueError(f"unfreeze_epochs must not decrease, got {list(unfreeze_epochs)}")
        self.mode = mode
        self.unfreeze_epochs = list(unfreeze_epochs)
        self.backbone_lr_scale = backbone_lr_scale
        self.layer_decay = layer_decay
        self.partial_bn = partial_bn
        self.freeze_bn = freeze_bn
        self.train_norms = train_norms
        self.adapter_lr_scale = adapter_lr_scale
        self.lora_lr_scale = lora_lr_scale
        self.stage_names: list[str] = []

    # -- what the module asks when it is built and when it builds its optimizer -------------

    def prepare(self, classifier: nn.Module) -> None:
        """Called once, before training wraps the model (DDP): switch off ``requires_grad`` of
        what never learns (the backbone of a linear probe)."""
        self.stage_names = [f"backbone.{name}" for name, _ in backbone_stages(classifier.backbone)]
        if self.mode in ("linear_probe", "adapter"):
            for parameter in classifier.backbone.parameters():
                parameter.requires_grad_(False)
        if self.mode == "adapter":
            for parameter in lora_parameters(classifier.backbone):
                parameter.requires_grad_(True)
            if self.train_norms:
                for module in classifier.backbone.modules():
                    if isinstance(module, NORM_LAYERS):
                        module.requires_grad_(True)

    def param_groups(self, classifier: nn.Module) -> list[dict[str, Any]]:
        """Named groups with an ``lr_scale`` each: backbone stages, temporal module, head."""
        stages = backbone_stages(classifier.backbone)
        params = dict(classifier.backbone.model.named_parameters())
        adapter = self.mode == "adapter"  # in the backbone only LoRA and norms learn then
        inside = self.lora_lr_scale if adapter else 1.0
        groups = []
        for depth, (group_name, (_, names)) in enumerate(zip(self.stage_names, stages)):
            scale = self.backbone_lr_scale * self.layer_decay ** (len(stages) - 1 - depth)
            members = [params[n] for n in names]
            groups.append({"name": group_name, "params": members, "lr_scale": scale * inside})
        for name, scale in (("temporal", self.adapter_lr_scale if adapter else 1.0),
                            ("head", 1.0)):
            members = list(getattr(classifier, name).parameters())
            if members:
                groups.append({"name": name, "params": members, "lr_scale": scale})
        return [g for g in groups if any(p.requires_grad for p in g["params"])]

    def frozen_groups(self, epoch: int) -> set[str]:
        """Names of the backbone groups that do not learn during ``epoch``."""
        if self.mode in ("full", "adapter"):  # adapter: requires_grad says what learns
            return set()
        if self.mode == "linear_probe":
            return set(self.stage_names)
        unfrozen = sum(1 for start in self.unfreeze_epochs if epoch >= start)
        top_down = list(reversed(self.stage_names))
        return set(top_down[unfrozen:])

    # -- BatchNorm modes ---------------------------------------------------------------------

    def apply_batchnorm_modes(self, classifier: nn.Module, epoch: int) -> None:
        """Put the BatchNorm layers whose statistics must not change into eval mode."""
        if not classifier.training:
            return
        frozen = self.frozen_groups(epoch)
        params = dict(classifier.backbone.model.named_parameters())
        stage_of = {  # a layer's stage is its weight's
            id(params[name]): f"backbone.{stage}"
            for stage, names in backbone_stages(classifier.backbone)
            for name in names
        }
        for index, (_, layer) in enumerate(batchnorm_layers(classifier.backbone.model)):
            in_frozen_stage = stage_of.get(id(layer.weight)) in frozen
            frozen_backbone = self.mode == "adapter" and not self.train_norms
            if (self.freeze_bn or (self.partial_bn and index > 0) or in_frozen_stage
                    or frozen_backbone):
                layer.eval()

    def drop_frozen_gradients(self, optimizer: Any, epoch: int) -> None:
        """Before an optimizer step: frozen groups get no update (no decay, no momentum)."""
        frozen = self.frozen_groups(epoch)
        if not frozen:
            return
        for group in optimizer.param_groups:
            if group.get("name") in frozen:
                for parameter in group["params"]:
                    parameter.grad = None
