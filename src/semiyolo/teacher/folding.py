"""The teacher as it runs for pseudo-labels (torch only): a copy with every BatchNorm folded into the convolution
before it, in channels-last memory, refreshed from the teacher before each forward.

Folding (Ioffe & Szegedy, 2015, eval mode; as Ultralytics' ``fuse`` does for inference): for a convolution ``W``,
``b`` followed by a BatchNorm with ``gamma``, ``beta``, running mean ``mu`` and variance ``var``,
``s = gamma / sqrt(var + eps)``, ``W' = s W`` (per output channel) and ``b' = beta + s (b - mu)``. The teacher
itself is never changed: it stays the EMA's weights, saved, validated and resumed as before. The copy is derived
state, rebuilt whenever the teacher it follows, its device or dtype change, and checked against the teacher once
(in float32) before it is trusted: a module whose forward is not ``bn(conv(x))`` falls back to the teacher.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import Tensor, nn

FOLDABLE_CHILDREN = {"conv", "bn"}  # a module made of these (and parameter-free ones, the activation) folds


def foldable_modules(model: nn.Module) -> list[str]:
    """Names of the modules whose children are a ``conv: nn.Conv2d``, a ``bn: nn.BatchNorm2d`` (affine, with running
    statistics) and otherwise only parameter-free modules (Ultralytics' ``Conv`` and ``DWConv``:
    ``act(bn(conv(x)))``)."""
    names = []
    for name, module in model.named_modules():
        children = dict(module.named_children())
        conv, bn = children.get("conv"), children.get("bn")
        if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.affine):
            continue
        if bn.running_var is None:
            continue
        others = [m for k, m in children.items() if k not in FOLDABLE_CHILDREN]
        if all(next(m.parameters(), None) is None and next(m.buffers(), None) is None for m in others):
            names.append(name)
    return names


class FoldedTeacher:
    """Runs ``teacher(images)`` in eval mode through a folded, channels-last copy of ``teacher``.

    Args:
        rtol, atol: how close the copy's outputs must be to the teacher's on the first images (float32) for the
            copy to be used; otherwise the teacher runs itself, with a warning.
    """

    def __init__(self, rtol: float = 1e-3, atol: float = 1e-3) -> None:
        self.rtol, self.atol = rtol, atol
        self.copy: nn.Module | None = None
        self.key: tuple | None = None  # what the copy was built from: the teacher's id, device, dtype, size
        self.trusted: bool | None = None  # None: not yet compared with the teacher
        self.pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]] = []
        self.copies: list[tuple[Tensor, Tensor]] = []  # (the copy's tensor, the teacher's): every other state entry

    @torch.no_grad()
    def __call__(self, teacher: nn.Module, images: Tensor) -> Any:
        """``teacher(images)``, computed by the refreshed copy once it agreed with the teacher."""
        if self._key(teacher) != self.key:
            self._build(teacher)
        if self.trusted is False:
            return teacher(images)
        self.refresh()
        if self.trusted is None:
            self.trusted = self._agrees(teacher, images)
            if not self.trusted:
                return teacher(images)
        return self.copy(images.contiguous(memory_format=torch.channels_last) if images.dim() == 4 else images)

    @staticmethod
    def _key(teacher: nn.Module) -> tuple:
        first = next(teacher.parameters(), None)
        size = sum(1 for _ in teacher.modules())
        return (id(teacher), size) if first is None else (id(teacher), size, first.device, first.dtype)

    def _build(self, teacher: nn.Module) -> None:
        self.key, self.trusted = self._key(teacher), None
        loss = getattr(teacher, "criterion", None)  # a host's loss hung on the model is no part of its forward
        folded = copy.deepcopy(teacher, {id(loss): None} if loss is not None else None).eval()
        self.pairs = []
        folded_keys = set()
        for name in foldable_modules(teacher):
            source, target = teacher.get_submodule(name), folded.get_submodule(name)
            target.conv = _biased_like(source.conv)
            target.bn = nn.Identity()
            self.pairs.append((source.conv, source.bn, target.conv))
            prefix = f"{name}." if name else ""
            folded_keys |= {f"{prefix}conv.weight", f"{prefix}conv.bias"}
        for p in folded.parameters():
            p.requires_grad_(False)
        self.copy = folded.to(memory_format=torch.channels_last)
        ours, theirs = self.copy.state_dict(keep_vars=True), teacher.state_dict(keep_vars=True)
        self.copies = [(v, theirs[k]) for k, v in ours.items() if k not in folded_keys]

    def refresh(self) -> None:
        """The copy's weights from the teacher's current ones (about 2 ms for YOLOv8n on a CPU core)."""
        for conv, bn, target in self.pairs:
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)  # s, per output channel
            target.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            shift = bn.bias - bn.running_mean * scale  # beta - s mu
            target.bias.copy_(shift if conv.bias is None else shift + conv.bias * scale)
        if self.copies:
            torch._foreach_copy_([v for v, _ in self.copies], [s.detach() for _, s in self.copies])

    def _agrees(self, teacher: nn.Module, images: Tensor) -> bool:
        """Whether the copy computes what the teacher does on ``images``, in float32."""
        with torch.autocast(images.device.type, enabled=False):
            expected, got = _tensors(teacher(images)), _tensors(self.copy(images))
        same = len(expected) == len(got) and all(
            e.shape == g.shape and torch.allclose(e.float(), g.float(), self.rtol, self.atol)
            for e, g in zip(expected, got, strict=True)
        )
        if not same:
            warnings.warn(
                "semiyolo: the teacher with BatchNorm folded into its convolutions disagrees with the teacher "
                "(a module named conv + bn that does not compute bn(conv(x))?); the teacher runs unfolded",
                stacklevel=3,
            )
        return same


def _biased_like(conv: nn.Conv2d) -> nn.Conv2d:
    """A convolution of ``conv``'s geometry, with a bias, to hold the folded weights."""
    w = conv.weight
    return nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups,
        bias=True, padding_mode=conv.padding_mode, device=w.device, dtype=w.dtype,
    )  # fmt: skip


def _tensors(out: Any) -> list[Tensor]:
    """Every tensor in a (nested) tuple, list or dict of outputs, in order."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _tensors(v)]
    return []
