"""Quantization settings: one validated dataclass shared by the API and the CLI."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import OptionError
from .wformat import DEFAULT_WBITS, WEIGHT_FORMATS, wbits_problem

__all__ = ["QuantConfig", "AutoBitsConfig", "LayerSpec", "SCHEMES", "CALIBRATIONS", "ROUNDINGS", "WEIGHT_FORMATS",
           "EDGE_BITS", "load_bits_file", "parse_bits", "parse_weights"]

SCHEMES = ("pow2", "symmetric", "asymmetric")
CALIBRATIONS = ("none", "minmax", "percentile", "entropy", "mse")
ROUNDINGS = ("nearest", "gptq")

#: Weight and activation width the first and last layers keep under binary/ternary
#: weights or 1-bit activations (where binary networks lose most), unless named.
EDGE_BITS = 8

_LOW_BIT_FORMATS = ("binary", "ternary")


def _check_bits(what: str, bits: Any, lo: int = 2) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= 16:
        raise OptionError(f"{what} must be an integer in {lo}..16, not {bits!r}")
    return bits


def _check_format(what: str, fmt: Any) -> str:
    if fmt not in WEIGHT_FORMATS:
        raise OptionError(f"unknown {what} {fmt!r}; use one of {', '.join(WEIGHT_FORMATS)}")
    return fmt


class LayerSpec(NamedTuple):
    """One layer's resolved widths (:meth:`QuantConfig.resolve`)."""

    wformat: str
    wbits: int
    abits: int


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize a graph.

    The defaults are the most accurate setting that costs nothing in hardware:
    asymmetric activations (the zero point folds into the bias, so the datapath is the
    same as symmetric), per-channel 8-bit weights with a 16-bit multiplier,
    MSE-optimal clipping of the calibrated ranges, GPTQ weight rounding, cross-layer
    equalization and bias correction (each measured to help or be neutral on the
    example models; see bench/quant_vs_ort.py).

    Parameters
    ----------
    scheme : {"pow2", "symmetric", "asymmetric"}
        ``pow2``: every scale a power of two, requantizer is a shift (``M = 1``);
        ``symmetric``: zero points 0, ``M`` of ``mbits`` bits plus a shift;
        ``asymmetric``: as symmetric, with activation zero points.
    per_channel : bool
        One weight scale per output channel (else one per tensor).
    wbits : int or None
        Default weight code width: 2..16 for ``int``, 3..5 for ``pot``, 1 for ``binary``,
        2 for ``ternary`` (:mod:`hwflow.quant.wformat`). None: the format's default (8, 4,
        1, 2); it is resolved on construction, and :meth:`with_` resolves it again when
        ``weights`` changes without it.
    abits : int
        Default activation width, 2..16; or 1: bipolar activations (±1), allowed only on
        the output of a layer whose activation is a sign (or of a MaxPool/Concat of such).
        The network input and the outputs of the last Conv/Gemm and after keep
        :data:`EDGE_BITS` unless ``layer_bits`` names them.
    weights : {"int", "pot", "binary", "ternary"}
        Default weight format. ``int`` and ``pot`` apply to every Conv/Gemm; ``binary``
        and ``ternary`` spare the first and last Conv/Gemm, which keep ``int`` weights of
        :data:`EDGE_BITS` bits unless ``layer_weights``/``layer_bits`` name them.
    layer_bits : dict of str to (int, int)
        Per-layer ``(wbits, abits)`` overrides; ``abits`` is the layer's output width.
        Names are checked against the graph by :func:`~hwflow.quant.quantize`.
    layer_weights : dict of str to str
        Per-layer weight formats. A layer whose format is not ``weights`` takes its
        format's default width unless ``layer_bits`` gives one.
    calibration : {"none", "minmax", "percentile", "entropy", "mse"}
        How activation ranges are chosen from calibration data (``none``: from the
        weights alone, no data needed).
    percentile : float
        Percentile of ``|x|`` kept by ``calibration="percentile"``.
    clamp_sigma : float or None
        Clamp weights to ``mean ± k·std`` of their channel before quantizing.
    cle : bool
        Cross-layer equalization of ReLU-separated Conv/Gemm pairs.
    bias_correction : bool
        Correct each layer's bias for the mean error its weight quantization causes.
    rounding : {"gptq", "nearest"}
        How weights become codes once their scale is chosen: ``gptq`` spreads each
        rounding error over the weights not yet rounded so the layer's output error on
        the calibration data is minimal (:mod:`hwflow.quant.gptq`); ``nearest`` rounds
        each weight alone. Without calibration data it is always ``nearest``.
    mbits : int
        Width of the requantizer multiplier (symmetric/asymmetric), 2..31.
    input_range : (float, float) or None
        Real range of the network input; from the data when calibrating, else needed
        by ``calibration="none"`` (default ``(-1, 1)`` when absent).
    """

    scheme: str = "asymmetric"
    per_channel: bool = True
    wbits: int | None = None
    abits: int = 8
    layer_bits: dict[str, tuple[int, int]] = field(default_factory=dict)
    calibration: str = "mse"
    percentile: float = 99.99
    clamp_sigma: float | None = None
    cle: bool = True
    bias_correction: bool = True
    rounding: str = "gptq"
    mbits: int = 16
    input_range: tuple[float, float] | None = None
    weights: str = "int"
    layer_weights: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise OptionError(f"unknown scheme {self.scheme!r}; use one of {', '.join(SCHEMES)}")
        if self.calibration not in CALIBRATIONS:
            raise OptionError(
                f"unknown calibration {self.calibration!r}; use one of {', '.join(CALIBRATIONS)}"
            )
        if self.rounding not in ROUNDINGS:
            raise OptionError(f"unknown rounding {self.rounding!r}; use one of {', '.join(ROUNDINGS)}")
        _check_format("weight format", self.weights)
        if self.wbits is None:
            object.__setattr__(self, "wbits", DEFAULT_WBITS[self.weights])
        _check_bits("wbits", self.wbits, lo=1)
        why = wbits_problem(self.weights, self.wbits)
        if why:
            raise OptionError(why)
        _check_bits("abits", self.abits, lo=1)
        bits = {}
        for name, wa in dict(self.layer_bits).items():
            if not isinstance(wa, (tuple, list)) or len(wa) != 2:
                raise OptionError(f"bits of layer {name!r} must be (wbits, abits), not {wa!r}")
            bits[str(name)] = (_check_bits(f"wbits of layer {name!r}", wa[0], lo=1),
                               _check_bits(f"abits of layer {name!r}", wa[1], lo=1))
        object.__setattr__(self, "layer_bits", bits)
        formats = {str(name): _check_format(f"weight format of layer {name!r}", f)
                   for name, f in dict(self.layer_weights).items()}
        object.__setattr__(self, "layer_weights", formats)
        if not 50.0 < float(self.percentile) <= 100.0:
            raise OptionError(f"percentile must be in (50, 100], not {self.percentile!r}")
        if self.clamp_sigma is not None and not float(self.clamp_sigma) > 0:
            raise OptionError(f"clamp sigma must be > 0, not {self.clamp_sigma!r}")
        if isinstance(self.mbits, bool) or not isinstance(self.mbits, int) or not 2 <= self.mbits <= 31:
            raise OptionError(f"mbits must be an integer in 2..31, not {self.mbits!r}")
        if self.input_range is not None:
            lo, hi = (float(v) for v in self.input_range)
            if not lo < hi:
                raise OptionError(f"input range must be (lo, hi) with lo < hi, not {self.input_range!r}")
            object.__setattr__(self, "input_range", (lo, hi))

    def bits_of(self, layer: str) -> tuple[int, int]:
        """``(wbits, abits)`` of ``layer`` (its override, else the defaults).

        This ignores the first/last-layer rule of binary/ternary weights and 1-bit
        activations, which needs the graph: :meth:`resolve` applies it.
        """
        return self.layer_bits.get(layer, (self.wbits, self.abits))

    @property
    def int_only(self) -> bool:
        """Whether every weight is ``int`` and every activation at least 2 bits."""
        return (self.weights == "int" and self.abits > 1 and set(self.layer_weights.values()) <= {"int"}
                and all(w > 1 and a > 1 for w, a in self.layer_bits.values()))

    def resolve(self, names: list[str], weighted: list[str]) -> dict[str, LayerSpec]:
        """Every layer's weight format and widths.

        Parameters
        ----------
        names : list of str
            The layers in execution order.
        weighted : list of str
            Those with weights (Conv/Gemm), in the same order: the first and last are
            the edge layers that binary/ternary weights and 1-bit activations spare.

        Returns
        -------
        dict of str to LayerSpec

        Raises
        ------
        OptionError
            A layer's width that its format does not take (e.g. ``binary`` with 4 bits).
        """
        edges = {weighted[0], weighted[-1]} if weighted else set()
        tail = set(names[names.index(weighted[-1]):]) if weighted else set()
        out = {}
        for name in names:
            w, a = self.layer_bits.get(name, (None, None))
            fmt = self.layer_weights.get(name, self.weights)
            spared = name not in self.layer_weights and name in edges and self.weights in _LOW_BIT_FORMATS
            if spared:
                fmt = "int"
            if w is None:
                w = EDGE_BITS if spared else self.wbits if fmt == self.weights else DEFAULT_WBITS[fmt]
            if a is None:
                a = EDGE_BITS if self.abits == 1 and name in tail else self.abits
            if name in weighted:
                why = wbits_problem(fmt, w)
                if why:
                    raise OptionError(f"layer {name!r}: {why}")
            out[name] = LayerSpec(fmt if name in weighted else "int", w, a)
        return out

    def check_layers(self, names) -> None:
        """Raise OptionError if ``layer_bits`` or ``layer_weights`` names a layer not in ``names``."""
        names = list(names)
        for what, given in (("per-layer bits", self.layer_bits), ("per-layer weight formats", self.layer_weights)):
            unknown = sorted(set(given) - set(names))
            if unknown:
                raise OptionError(
                    f"unknown layer name(s) {', '.join(map(repr, unknown))} in {what}; "
                    f"layers are: {', '.join(names)}"
                )

    def with_(self, **changes) -> "QuantConfig":
        """A copy with ``changes`` applied (validated again). Changing ``weights`` without
        ``wbits`` gives the new format's default width."""
        if "weights" in changes and "wbits" not in changes:
            changes["wbits"] = None
        return replace(self, **changes)


@dataclass(frozen=True)
class AutoBitsConfig:
    """Choose per-layer weight widths automatically (:func:`hwflow.quant.autobits.auto_bits`).

    Starting from every layer at :attr:`QuantConfig.wbits`, a greedy search lowers the
    layer whose measured noise per bit saved is smallest, until weight storage fits the
    budget or before agreement would fall below the floor. It measures on calibration
    data, so it needs some. Give at least one of the two stop criteria.

    Parameters
    ----------
    budget_kbit : float or None
        Stop once weight storage is at most this many kbit (1 kbit = 1000 bits); > 0.
    agreement_floor : float or None
        Never accept a step that takes top-1 agreement with the float model below this
        fraction, in (0, 1].
    """

    budget_kbit: float | None = None
    agreement_floor: float | None = None

    def __post_init__(self) -> None:
        if self.budget_kbit is None and self.agreement_floor is None:
            raise OptionError("auto bits need a weight budget (budget_kbit) or an agreement floor (agreement_floor)")
        for name in ("budget_kbit", "agreement_floor"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise OptionError(f"{name} must be a number, not {v!r}")
        if self.budget_kbit is not None and not float(self.budget_kbit) > 0:
            raise OptionError(f"budget_kbit must be > 0, not {self.budget_kbit!r}")
        if self.agreement_floor is not None and not 0.0 < float(self.agreement_floor) <= 1.0:
            raise OptionError(f"agreement_floor must be a fraction in (0, 1], not {self.agreement_floor!r}")


def parse_bits(spec: str) -> tuple[str, tuple[int, int]]:
    """Parse ``LAYER=W/A`` (e.g. ``fc1=4/8``) into ``(layer, (w, a))``."""
    name, sep, wa = spec.rpartition("=")
    w, slash, a = wa.partition("/")
    try:
        if not sep or not name or not slash:
            raise ValueError
        return name, (int(w), int(a))
    except ValueError:
        raise OptionError(f"bad per-layer bits {spec!r}; write LAYER=W/A, e.g. fc1=4/8") from None


def parse_weights(spec: str) -> tuple[str | None, str]:
    """Parse ``FORMAT`` or ``LAYER=FORMAT`` (e.g. ``pot``, ``fc2=binary``) into ``(layer or None, format)``."""
    name, sep, fmt = spec.rpartition("=")
    if sep and not name:
        raise OptionError(f"bad weight format {spec!r}; write FORMAT or LAYER=FORMAT, e.g. fc2=binary")
    return (name or None), _check_format("weight format", fmt.strip())


def load_bits_file(path: str | Path) -> dict[str, tuple[int, int]]:
    """Read per-layer bits from TOML or JSON: ``{layer = [w, a]}`` or ``{layer = "W/A"}``.

    A TOML file may put them under a ``[bits]`` table.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise OptionError(f"cannot read bits file {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise OptionError(f"bits file {str(path)!r} is not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("bits"), dict):
        data = data["bits"]
    if not isinstance(data, dict):
        raise OptionError(f"bits file {str(path)!r} must map layer names to [wbits, abits]")
    out = {}
    for name, wa in data.items():
        if isinstance(wa, str):
            out.update([parse_bits(f"{name}={wa}")])
        elif isinstance(wa, (list, tuple)) and len(wa) == 2 and all(isinstance(v, int) for v in wa):
            out[name] = (wa[0], wa[1])
        else:
            raise OptionError(f"bits file {str(path)!r}: layer {name!r} needs [wbits, abits] or \"W/A\", not {wa!r}")
    return out
