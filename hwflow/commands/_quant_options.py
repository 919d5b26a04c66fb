"""The quantization options shared by ``eval``, ``quantize`` and ``compile``.

They only build configs (:class:`~hwflow.quant.config.QuantConfig`,
:class:`~hwflow.quant.config.AutoBitsConfig`); the work is :func:`hwflow.flow.quantize_graph`::

    @click.command("compile")
    @quant_options
    def compile_cmd(model, calib, **kwargs):
        quant = quant_config(calib, **kwargs)   # ignores keys it does not know
        auto = auto_bits_config(**kwargs)       # None unless --auto-bits
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import OptionError
from ..quant.config import (CALIBRATIONS, EDGE_BITS, ROUNDINGS, SCHEMES, WEIGHT_FORMATS, AutoBitsConfig, QuantConfig,
                            load_bits_file, parse_bits, parse_weights)

__all__ = ["quant_options", "quant_config", "auto_bits_config", "QUANT_OPTION_NAMES"]

#: keyword names the decorator adds (so commands can split their kwargs)
QUANT_OPTION_NAMES = (
    "scheme", "per_channel", "wbits", "abits", "bits", "weights", "calibration", "clamp_sigma",
    "cle", "bias_correction", "rounding", "mbits", "input_range", "auto_bits", "budget_kbit", "agreement_floor",
)

_DEFAULT = QuantConfig()


def _option_list():
    # choices are checked by QuantConfig so a bad value is one HwflowError line (exit 2)
    return [
        click.option("--scheme", default=_DEFAULT.scheme, show_default=True, metavar="|".join(SCHEMES),
                     help="pow2: shift-only requantizer; symmetric: zero points 0 and a 16-bit multiplier; "
                          "asymmetric: as symmetric plus activation zero points (free in hardware)."),
        click.option("--per-channel/--per-tensor", "per_channel", default=_DEFAULT.per_channel, show_default=True,
                     help="One weight scale per output channel, or one per layer."),
        click.option("--wbits", type=int, default=None,
                     help="Weight code bits: int 2..16, pot 3..5, binary 1, ternary 2.  "
                          "[default: 8 for int, 4 pot, 1 binary, 2 ternary]"),
        click.option("--abits", type=int, default=_DEFAULT.abits, show_default=True,
                     help=f"Activation bits (2..16), or 1: ±1 after a sign activation (the input and the "
                          f"last layer keep {EDGE_BITS})."),
        click.option("--weights", "weights", multiple=True, metavar="|".join(WEIGHT_FORMATS) + "|LAYER=FORMAT",
                     help="Weight format: int; pot (0 or ±2^k × scale, multiplier-free); binary (±1 × scale); "
                          f"ternary (-1, 0, +1 × scale). binary/ternary keep the first and last layer at int{EDGE_BITS}. "
                          "Repeatable; LAYER=FORMAT sets one layer.  [default: int]"),
        click.option("--bits", "bits", multiple=True, metavar="LAYER=W/A|FILE",
                     help="Per-layer bits, e.g. --bits fc1=4/8 (repeatable), or a TOML/JSON file mapping layers to [w, a]."),
        click.option("--calibration", default=None, metavar="|".join(CALIBRATIONS),
                     help="Activation ranges: none (from the weights, no data), minmax, percentile, entropy (KL), "
                          f"mse.  [default: {_DEFAULT.calibration} with --calib, none without]"),
        click.option("--clamp-sigma", type=float, default=None, metavar="K",
                     help="Clamp each channel's weights to mean ± K·std before quantizing."),
        click.option("--cle/--no-cle", default=_DEFAULT.cle, show_default=True,
                     help="Cross-layer equalization of ReLU-separated layer pairs."),
        click.option("--bias-correction/--no-bias-correction", default=_DEFAULT.bias_correction, show_default=True,
                     help="Correct biases for the mean output error of quantization (from --calib data, "
                          "else BatchNorm/propagated statistics)."),
        click.option("--rounding", default=_DEFAULT.rounding, show_default=True, metavar="|".join(ROUNDINGS),
                     help="Weight rounding: gptq compensates rounding errors using --calib data (no data: nearest)."),
        click.option("--mbits", type=int, default=_DEFAULT.mbits, show_default=True,
                     help="Requantizer multiplier width (symmetric/asymmetric)."),
        click.option("--input-range", default=None, metavar="LO,HI",
                     help="Real range of the input for --calibration none (default: -1,1)."),
        click.option("--auto-bits", is_flag=True,
                     help="Choose per-layer weight bits greedily by sensitivity (needs --budget-kbit or --agreement-floor)."),
        click.option("--budget-kbit", type=float, default=None, help="Weight storage budget for --auto-bits, in kbit."),
        click.option("--agreement-floor", type=float, default=None,
                     help="For --auto-bits: lowest top-1 agreement with float to accept (fraction, e.g. 0.99)."),
    ]


def quant_options(fn):
    """Click decorator adding the shared quantization options (see QUANT_OPTION_NAMES)."""
    for opt in reversed(_option_list()):
        fn = opt(fn)
    return fn


def _parse_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise OptionError(f"--input-range must be LO,HI (e.g. 0,1), not {text!r}") from None
    return lo, hi


def quant_config(calib, **kwargs) -> QuantConfig:
    """The QuantConfig the options ask for (unknown keys are ignored).

    ``calib`` is the ``--calib`` option: without calibration data the calibration is
    ``none``, and asking for another one is an OptionError.

    Raises
    ------
    OptionError
        Bad scheme, bits, weight format, per-layer spec or file; a calibration that needs data without
        ``--calib``; one line naming the problem.
    """
    layer_bits: dict[str, tuple[int, int]] = {}
    for spec in kwargs.get("bits") or ():
        if "=" not in spec:
            if not Path(spec).exists():
                raise OptionError(f"--bits {spec!r} is neither LAYER=W/A nor an existing TOML/JSON file")
            layer_bits.update(load_bits_file(spec))
        else:
            name, wa = parse_bits(spec)
            layer_bits[name] = wa
    weights, layer_weights = _DEFAULT.weights, {}
    for spec in kwargs.get("weights") or ():
        name, fmt = parse_weights(spec)
        if name is None:
            weights = fmt
        else:
            layer_weights[name] = fmt
    asked = kwargs.get("calibration")
    config = QuantConfig(
        scheme=kwargs.get("scheme", _DEFAULT.scheme),
        per_channel=kwargs.get("per_channel", _DEFAULT.per_channel),
        wbits=kwargs.get("wbits"),
        weights=weights,
        layer_weights=layer_weights,
        abits=kwargs.get("abits", _DEFAULT.abits),
        layer_bits=layer_bits,
        calibration=asked or _DEFAULT.calibration,
        clamp_sigma=kwargs.get("clamp_sigma"),
        cle=bool(kwargs.get("cle", _DEFAULT.cle)),
        bias_correction=bool(kwargs.get("bias_correction", _DEFAULT.bias_correction)),
        rounding=kwargs.get("rounding", _DEFAULT.rounding),
        mbits=kwargs.get("mbits", _DEFAULT.mbits),
        input_range=_parse_range(kwargs.get("input_range")),
    )
    if calib is None and asked not in (None, "none"):
        raise OptionError(f"--calibration {asked} needs calibration data: pass --calib CALIB.npz (or use --calibration none)")
    return config


def auto_bits_config(**kwargs) -> AutoBitsConfig | None:
    """The AutoBitsConfig of ``--auto-bits`` (None without it; unknown keys are ignored)."""
    if not kwargs.get("auto_bits"):
        return None
    if kwargs.get("budget_kbit") is None and kwargs.get("agreement_floor") is None:
        raise OptionError("--auto-bits needs --budget-kbit KBIT or --agreement-floor FRACTION")
    return AutoBitsConfig(budget_kbit=kwargs.get("budget_kbit"), agreement_floor=kwargs.get("agreement_floor"))
