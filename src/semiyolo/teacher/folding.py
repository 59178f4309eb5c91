"""The teacher as it runs for pseudo-labels (torch only): a copy with every BatchNorm folded into the convolution
before it, in channels-last memory, refreshed from the teacher before each forward.

Folding (Ioffe & Szegedy, 2015, eval mode; torch's ``fuse_conv_bn_weights``, as Ultralytics' ``fuse`` does for
inference): for a convolution ``W``, ``b`` followed by a BatchNorm with ``gamma``, ``beta``, running mean ``mu``
and variance ``var``, ``s = gamma / sqrt(var + eps)``, ``W' = s W`` (per output channel) and
``b' = beta + s (b - mu)``. The teacher
itself is never changed: it stays the EMA's weights, saved, validated and resumed as before. The copy is derived
state: one per model it runs, rebuilt when that model's device, dtype or modules change. Before a copy is used, a
probe checks that folding is faithful to the architecture: a deep copy of the model with random weights and
BatchNorm statistics from a fixed seed, folded and unfolded, on a fixed random input. The check depends on the
architecture alone, never on the weights, so a resumed run decides as the uninterrupted one did. A module whose
forward is not ``bn(conv(x))`` fails it, and the model then runs unfolded, with a warning.

The copy holds the model's weights and buffers (refreshed) but not attributes set on the model after it was built
(a head's ``end2end`` switched for validation and restored keeps the value the pseudo-labels need).
"""

from __future__ import annotations

import copy
import warnings
import weakref
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

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
    """Runs ``model(images)`` (eval mode, no gradient) through a refreshed folded, channels-last copy of ``model``,
    one copy per model it is given (a review page runs a teacher and a student through one labeler).

    Args:
        rtol, atol: how close the folded probe's outputs must be to the unfolded probe's for copies of that
            architecture to be used (``atol`` relative to the largest output).
    """

    def __init__(self, rtol: float = 1e-4, atol: float = 1e-4) -> None:
        self.rtol, self.atol = rtol, atol
        self.copies: weakref.WeakKeyDictionary[nn.Module, FoldedCopy] = weakref.WeakKeyDictionary()

    @torch.no_grad()
    def __call__(self, model: nn.Module, images: Tensor) -> Any:
        """``model(images)``, computed by its copy when folding is faithful to its architecture."""
        folded = self.copies.get(model)
        if folded is None or folded.key != _key(model):
            folded = self.copies[model] = FoldedCopy(model)
            folded.trusted = folds_faithfully(model, images.shape[1:], self.rtol, self.atol)
        if not folded.trusted:
            return model(images)
        folded.refresh()
        return folded.model(_channels_last(images))


class FoldedCopy:
    """A copy of ``source`` with every :func:`foldable_modules` block folded, in channels-last memory;
    :meth:`refresh` recomputes its weights from ``source``'s current ones."""

    def __init__(self, source: nn.Module) -> None:
        self.key, self.trusted = _key(source), False
        self.model = _detached_copy(source)  # in eval mode, as folding requires
        self.pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]] = []  # source conv, source bn, folded conv
        folded_keys = set()
        for name in foldable_modules(source):
            block, target = source.get_submodule(name), self.model.get_submodule(name)
            target.conv, target.bn = fuse_conv_bn_eval(target.conv, target.bn), nn.Identity()
            self.pairs.append((block.conv, block.bn, target.conv))
            prefix = f"{name}." if name else ""
            folded_keys |= {f"{prefix}conv.weight", f"{prefix}conv.bias"}
        self.model.to(memory_format=torch.channels_last)
        ours, theirs = self.model.state_dict(keep_vars=True), source.state_dict(keep_vars=True)
        copied = [k for k in ours if k not in folded_keys]  # every other entry, copied as it is
        self.copied_to, self.copied_from = [ours[k] for k in copied], [theirs[k].detach() for k in copied]

    @torch.no_grad()
    def refresh(self) -> None:
        """The copy's weights from the source's current ones (part of the folded forward that
        ``benchmarks/ssod_step.py`` times)."""
        for conv, bn, target in self.pairs:
            w, b = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            target.weight.copy_(w)  # in place: the copy keeps its channels-last layout
            target.bias.copy_(b)
        if self.copied_to:
            torch._foreach_copy_(self.copied_to, self.copied_from)


@torch.no_grad()
def folds_faithfully(model: nn.Module, image_shape: torch.Size, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
    """Whether folding ``model``'s :func:`foldable_modules` keeps its outputs: on a float32 probe of its
    architecture with random weights and BatchNorm statistics (fixed seed, whatever the model's own), folded and
    unfolded, on one fixed random image of ``image_shape`` ``(C, H, W)``. Warns when it does not."""
    gen = torch.Generator().manual_seed(0)
    probe = _detached_copy(model).float()
    for name, t in probe.state_dict().items():
        if t.is_floating_point():
            t.copy_(_random_like(name, t, gen))
    folded = FoldedCopy(probe)
    folded.refresh()
    device = next(probe.parameters(), torch.empty(0)).device
    image = torch.rand(1, *image_shape, generator=gen).to(device)
    with torch.autocast(device.type, enabled=False):
        expected, got = _tensors(probe(image)), _tensors(folded.model(_channels_last(image)))
    faithful = len(expected) == len(got) and all(
        e.shape == g.shape and torch.allclose(g, e, rtol, atol * max(float(e.abs().max()), 1.0))
        for e, g in zip(expected, got, strict=True)
    )
    if not faithful:
        warnings.warn(
            f"semiyolo: folding BatchNorm into the convolutions of {type(model).__name__} changes its outputs (a "
            "module named conv + bn that does not compute bn(conv(x))?); it runs unfolded",
            stacklevel=3,
        )
    return faithful


def _random_like(name: str, t: Tensor, gen: torch.Generator) -> Tensor:
    """A probe's value for state entry ``name``: convolution and linear weights scaled by their fan-in, BatchNorm
    scales and variances around 1, everything else small."""
    if name.endswith("running_var"):
        return torch.rand(t.shape, generator=gen) * 1.5 + 0.5
    if t.dim() > 1:
        return torch.randn(t.shape, generator=gen) / max(t[0].numel(), 1) ** 0.5
    if name.endswith("weight"):  # a BatchNorm's (or other norm's) scale
        return torch.rand(t.shape, generator=gen) + 0.5
    return torch.rand(t.shape, generator=gen) - 0.5


def _key(model: nn.Module) -> tuple:
    """What a copy depends on beyond the weights: the model's modules, device and dtype."""
    first = next(model.parameters(), None)
    size = sum(1 for _ in model.modules())
    return (size,) if first is None else (size, first.device, first.dtype)


def _detached_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode without gradients, leaving out a host's loss hung on the model (``criterion``)."""
    loss = getattr(model, "criterion", None)
    twin = copy.deepcopy(model, {id(loss): None} if loss is not None else None).eval()
    return twin.requires_grad_(False)


def _channels_last(images: Tensor) -> Tensor:
    return images.contiguous(memory_format=torch.channels_last) if images.dim() == 4 else images


def _tensors(out: Any) -> list[Tensor]:
    """Every tensor in a (nested) tuple, list or dict of outputs, in order."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _tensors(v)]
    return []
