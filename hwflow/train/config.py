"""The training options of ``hwflow finetune``: one validated dataclass for the API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import OptionError

__all__ = ["TrainConfig", "RANGES"]

#: TrainConfig.ranges values: activation and weight scales kept from calibration, or learned.
RANGES = ("fixed", "learned")


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{what} must be a positive integer, not {value!r}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{what} must be a number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`hwflow.finetune` trains.

    Parameters
    ----------
    epochs : int
        Passes over the training data (>= 1).
    lr : float
        Adam's learning rate (> 0), decayed to 0 along a cosine over all steps. Weights
        train in units of their starting quantization step (per output channel) and
        biases in units of their layer's output scale, so the rate means the same at
        every layer and width: 0.03 moves a weight by up to 3 % of a step per step.
        Learned scales (log2) train at ``scale_lr`` times it.
    batch_size : int
        Samples per step (>= 1).
    seed : int
        Seeds the shuffling (and the validation split): the same seed on the same
        machine trains the same bytes.
    ranges : {"fixed", "learned"}
        ``fixed``: the activation and weight scales stay those of the calibration (only
        weights and biases train); ``learned``: the scales train too, LSQ-style (Esser
        et al., 2020: straight-through rounding, gradient scaled by
        ``1/sqrt(n·qmax)``), in log2 steps for the ``pow2`` scheme. Zero points stay.
    scale_lr : float
        The learned scales' (log2) learning rate relative to ``lr`` (> 0): their own
        parameter group, since a log2 step moves every code of a tensor at once.
    warmup : float
        The share of the steps, in [0, 0.5], over which the learning rate ramps up
        linearly from 0 before its cosine decay: the first steps' gradients, through
        the post-training quantization's clamped codes, are the noisiest.
    distill : float
        Weight in [0, 1] of distillation from the float model (Hinton et al., 2015): the
        loss is ``(1 - distill) * CE(labels) + distill * T² KL(float || quantized)`` at
        temperature ``T = 2``, the float model's logits computed once before training.
        The float logits carry the classes' similarities, which a low-bit network
        learns from faster than from the labels alone.
    epoch_samples : int or None
        Training samples per epoch (a fresh seeded draw each epoch, without
        replacement); None: all. Fewer samples per epoch means more epochs, so more
        chances to keep the best, in the same time.
    val_fraction : float
        Without validation data, the share of the training data held out for it, in
        (0, 0.5].
    calib_samples : int
        Without calibration data, how many training samples calibrate the start.
    """

    epochs: int = 10
    lr: float = 3e-2
    batch_size: int = 32
    seed: int = 0
    ranges: str = "learned"
    scale_lr: float = 0.1
    warmup: float = 0.0
    distill: float = 0.0
    epoch_samples: int | None = None
    val_fraction: float = 0.1
    calib_samples: int = 256

    def __post_init__(self) -> None:
        _positive_int(self.epochs, "epochs")
        _positive_int(self.batch_size, "batch size")
        _positive_int(self.calib_samples, "calib samples")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise OptionError(f"seed must be a non-negative integer, not {self.seed!r}")
        lr = _number(self.lr, "learning rate")
        if not 0.0 < lr < float("inf"):
            raise OptionError(f"learning rate must be > 0, not {self.lr!r}")
        object.__setattr__(self, "lr", lr)
        for name, lo, hi in (("scale_lr", 0.0, float("inf")), ("warmup", 0.0, 0.5), ("distill", 0.0, 1.0)):
            v = _number(getattr(self, name), name.replace("_", " "))
            if not (lo < v < hi if name == "scale_lr" else lo <= v <= hi):
                raise OptionError(f"{name.replace('_', ' ')} must be in "
                                  f"{'(0, inf)' if name == 'scale_lr' else f'[{lo:g}, {hi:g}]'}, not {v!r}")
            object.__setattr__(self, name, v)
        if self.epoch_samples is not None:
            _positive_int(self.epoch_samples, "epoch samples")
        vf = _number(self.val_fraction, "validation fraction")
        if not 0.0 < vf <= 0.5:
            raise OptionError(f"validation fraction must be in (0, 0.5], not {self.val_fraction!r}")
        object.__setattr__(self, "val_fraction", vf)
        if self.ranges not in RANGES:
            raise OptionError(f"ranges must be one of {', '.join(RANGES)}, not {self.ranges!r}")
