"""One optimisation step: the training method, optimizer, scheduler and precision of a run.

The step reads what the method needs (:class:`fer_nla.methods.Needs`) and gives it exactly that:
the forward of :func:`fer_nla.train.forward.forward_views` (one view, or the image and its
horizontal flip; features where asked), the samples' indices and the network's classifier where
asked, in a
:class:`~fer_nla.methods.MethodInputs`; it back-propagates the :class:`~fer_nla.methods.MethodOutput`'s
loss through the network and the method's own parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fer_nla.config import Config, OptimConfig
from fer_nla.distributed import all_reduce_tensor
from fer_nla.errors import InputError
from fer_nla.losses import hard_labels
from fer_nla.losses.nla import gt_and_nearest_negative
from fer_nla.methods import (
    Method,
    MethodInputs,
    MethodOutput,
    build_method,
    method_parameters,
)
from fer_nla.runtime import autocast_dtype
from fer_nla.train.forward import (
    ViewOutputs,
    check_method_fits,
    forward_views,
    network_classifier,
)


class NonFiniteStep(FloatingPointError):
    """A step's logits or loss held a nan/inf: ``kind`` (``"logits"`` or ``"loss"``) and the
    ``step`` number the epoch loop gave it."""

    def __init__(self, kind: str, step: int) -> None:
        super().__init__(f"non-finite {kind} (nan or inf)")
        self.kind, self.step = kind, step


class NonFiniteLossError(InputError):
    """Training diverged (nan or inf loss); the message says where and what to change."""


def build_optimizer(params: Iterable[Tensor], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam (the recipe), AdamW or SGD with momentum."""
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, *, epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Stepped once per epoch: ExponentialLR(gamma) as the recipe, cosine to zero, or none."""
    if cfg.scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


def horizontal_flip(images: Tensor) -> Tensor:
    """``[B, C, H, W]`` images mirrored left to right (the flipped view of NLA's consistency term)."""
    return images.flip(3)


@dataclass
class StepSignals:
    """Per-sample quantities of one batch, recorded at no extra forward (all detached)."""

    index: Tensor
    p_gt: Tensor
    p_nn: Tensor
    prediction: Tensor
    weights: Tensor | None = None
    correct: Tensor | None = None
    p_gt_uniform: Tensor | None = None  # the same at the uniform prior (the training prior divided out)
    p_nn_uniform: Tensor | None = None
    prediction_uniform: Tensor | None = None


@dataclass
class TrainStep:
    """The pieces one step needs; ``scaler`` only for fp16. ``model``: the network that trains
    (the DDP wrapper, or :class:`~fer_nla.freeze.TrailingPart` on cached frozen outputs)."""

    model: nn.Module
    method: Method
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    two_view_forward: str = "batched"
    grad_clip: float | None = None
    scaler: torch.amp.GradScaler | None = None
    first_nonfinite: Tensor | None = None  # set by note_nonfinite
    flip: Callable[[Tensor], Tensor] = horizontal_flip  # the flipped view of a batch (cached views: swap_views)
    to_uniform: Tensor | None = None  # [C], added to the logits: their softmax at the uniform prior (signals)
    classifier: nn.Linear | None = None  # the network's final linear layer, for methods that need it (found once)

    def autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_device(self, images: Tensor) -> Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def forward_views(self, images: Tensor) -> ViewOutputs:
        """What the method's needs ask of the network for ``images`` (the baselines: one view)."""
        return forward_views(self.model, images, needs=self.method.needs, flip=self.flip,
                             two_view_forward=self.two_view_forward)

    def method_inputs(self, views: ViewOutputs, targets: Tensor, index: Tensor) -> MethodInputs:
        """The method's :class:`MethodInputs`: logits in float32, indices and the network's
        classifier (:func:`~fer_nla.train.forward.network_classifier`) where it needs them."""
        needs, flip = self.method.needs, views.logits_flip
        indices = index.to(self.device, non_blocking=True) if needs.sample_index else None
        if needs.classifier and self.classifier is None:
            self.classifier = network_classifier(self.model)
        return MethodInputs(views.logits.float(), targets, logits_flip=None if flip is None else flip.float(),
                            feature_maps=views.feature_maps, feature_maps_flip=views.feature_maps_flip,
                            features=views.features, features_flip=views.features_flip, indices=indices,
                            classifier=self.classifier if needs.classifier else None)

    def __call__(self, images: Tensor, targets: Tensor, index: Tensor, *, step_number: int = 0,
                 ) -> tuple[Tensor, Tensor, StepSignals]:
        """One optimisation step; returns the (detached) loss, the logits and the signals.

        Nothing here waits for the device: a nan/inf in the logits or the loss is noted on the
        device (:meth:`note_nonfinite`, with ``step_number``) and raised by :meth:`check_finite`,
        which the epoch loop calls every few steps and at the epoch's end."""
        images, targets = self.to_device(images), targets.to(self.device, non_blocking=True)
        with self.autocast():
            views = self.forward_views(images)
        output: MethodOutput = self.method(self.method_inputs(views, targets, index))
        loss, logits = output.loss, views.logits
        self.note_nonfinite(step_number, logits=(logits, views.logits_flip), loss=loss)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_([*self.model.parameters(), *self.method.own_parameters()], self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss.detach(), logits.detach(), self.signals(logits.detach().float(), targets, index, output)

    def note_nonfinite(self, step_number: int, *, logits: tuple[Tensor | None, ...], loss: Tensor) -> None:
        """Record on the device the first step whose logits, or else loss, hold a nan/inf
        (``first_nonfinite``: ``[2]`` int64, logits then loss, ``-1`` while all is finite)."""
        if self.first_nonfinite is None or self.first_nonfinite.device != self.device:
            self.first_nonfinite = torch.full((2,), -1, dtype=torch.int64, device=self.device)
        bad_logits = torch.zeros((), dtype=torch.bool, device=self.device)
        for tensor in logits:
            if tensor is not None:
                bad_logits = bad_logits | ~torch.isfinite(tensor.detach()).all()
        bad = torch.stack([bad_logits, ~torch.isfinite(loss.detach())])
        unset = self.first_nonfinite < 0
        self.first_nonfinite = torch.where(bad & unset, torch.full_like(self.first_nonfinite, step_number),
                                           self.first_nonfinite)

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteStep` naming the first step (the ``step_number`` given) with a
        nan/inf, on every rank when any rank has one (a rank stopping alone would leave the
        others waiting forever). One host synchronisation (and one all-reduce under DDP)."""
        if self.first_nonfinite is None:
            return
        marks = torch.where(self.first_nonfinite < 0, torch.full_like(self.first_nonfinite, -(2**62)),
                            -self.first_nonfinite)  # max over ranks of -step = the earliest step
        all_reduce_tensor(marks, op="max")
        logits_step, loss_step = (int(v) for v in marks.cpu())
        if logits_step == -(2**62) and loss_step == -(2**62):
            return
        kind, step = ("logits", -logits_step) if logits_step >= loss_step else ("loss", -loss_step)
        raise NonFiniteStep(kind, step)

    def signals(self, logits: Tensor, targets: Tensor, index: Tensor, output: MethodOutput) -> StepSignals:
        """p_gt, p_nn and whether the given label is the top class, from the logits, and the
        per-sample weights the method gave (NLA's NAW weights; ``None`` for the baselines). With
        soft targets ``[B, C]`` the given label is each distribution's argmax."""
        given = hard_labels(targets)
        p_gt, p_nn, correct = gt_and_nearest_negative(logits, given)
        signals = StepSignals(index, p_gt, p_nn, logits.argmax(dim=1), output.sample_weights, correct)
        if self.to_uniform is not None:  # the label audit's default view: the class prior divided out
            balanced = logits.detach().float() + self.to_uniform
            signals.p_gt_uniform, signals.p_nn_uniform, _ = gt_and_nearest_negative(balanced, given)
            signals.prediction_uniform = balanced.argmax(dim=1)
        return signals


def build_train_step(
    config: Config,
    model: nn.Module,
    *,
    class_counts: np.ndarray,
    device: torch.device,
    channels_last: bool,
    net: nn.Module | None = None,
    num_samples: int | None = None,
    distributed: bool = False,
    class_prior: Sequence[float] | None = None,
) -> tuple[TrainStep, torch.optim.lr_scheduler.LRScheduler | None]:
    """The training method (``config.loss``, built once), optimizer, scheduler, precision and
    scaler of a run, assembled into a :class:`TrainStep` on ``net`` (the network that trains:
    the DDP wrapper or the cached trailing part; default ``model``). ``num_samples``: the
    training split's size, for methods with per-sample state. ``class_prior``: the training
    targets' class shares (the checkpoint's), for the signals at the uniform prior (default: the
    shares of ``class_counts``). The optimizer gets the trainable
    parameters of ``model`` and of the method. Raises :class:`InputError` for a method the
    config cannot build or the run cannot serve (:func:`~fer_nla.train.forward.check_method_fits`).

    The method's input check is switched off: the step already checks the logits on every rank
    and datasets check their targets, so it would only add a device sync per step."""
    tc = config.train
    network = net if net is not None else model
    method = config_method(config, class_counts=class_counts, num_samples=num_samples, network=model).to(device)
    check_method_fits(method, network, distributed=distributed, arch=config.model.arch)
    params = [p for p in model.parameters() if p.requires_grad] + method.own_parameters()
    optimizer = build_optimizer(params, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, epochs=tc.epochs)
    amp_dtype = autocast_dtype(tc.precision, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype is torch.float16 else None
    step = TrainStep(network, method, optimizer, device, amp_dtype, channels_last, tc.two_view_forward, tc.grad_clip,
                     scaler, to_uniform=uniform_shift(class_counts if class_prior is None else class_prior,
                                                      method.logit_offset(), device=device))
    return step, scheduler


def config_method(config: Config, *, class_counts: np.ndarray, num_samples: int | None,
                  network: nn.Module | None = None) -> Method:
    """The training method ``config.loss`` names, with its options (``check`` off unless the
    config asks: the step checks the logits itself), the run's epochs, class counts and size,
    and, for a method with layers of its own on the pooled features (SCN, RUL), their width
    ``num_features``: the ``in_features`` of ``network``'s classifier (without ``network``, of
    a fresh ``config.model.arch``). Raises :class:`InputError` for a method the config cannot build."""
    options = dict(config.loss.options)
    check = bool(options.pop("check", False))
    try:
        num_features = None
        if "num_features" in method_parameters(config.loss.name):
            if network is None:
                from fer_nla.models import build_model

                network = build_model(config.model.arch, num_classes=len(class_counts), stem=config.model.stem)
            num_features = network_classifier(network, arch=config.model.arch).in_features
        return build_method(config.loss.name, epochs=config.train.epochs, class_counts=class_counts,
                            num_samples=num_samples, num_features=num_features, check=check, **options)
    except ValueError as err:
        raise InputError(f"loss: {err}") from None


def uniform_shift(class_prior: Sequence[float] | np.ndarray, logit_offset: list[float] | None, *,
                  device: torch.device) -> Tensor:
    """``float32 [C]``: what moves a network's logits to the uniform prior, ``offset - log pi``
    (``pi``: the training targets' class shares, the ``class_prior`` a checkpoint records; a
    class with share 0 is not shifted; ``offset``: what the method adds before its softmax,
    :meth:`Method.logit_offset`): Bayes' rule, as :mod:`fer_nla.inference.scoring` applies it
    at prediction time."""
    pi = np.asarray(class_prior, dtype=np.float64)
    pi = pi / max(pi.sum(), 1e-300)
    shift = np.where(pi > 0, -np.log(np.maximum(pi, 1e-300)), 0.0)
    if logit_offset is not None:
        shift = shift + np.asarray(logit_offset, dtype=np.float64)
    return torch.as_tensor(shift, dtype=torch.float32, device=device)
