"""The quantization options shared by ``eval``, ``quantize`` and ``compile``.

Usage in a command::

    @click.command("compile")
    @quant_options
    def compile_cmd(model, **kwargs):
        config = config_from_options(**kwargs)        # ignores keys it does not know
        auto = auto_bits_from_options(**kwargs)       # None unless --auto-bits
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import click

from ..errors import OptionError
from ..quant.config import CALIBRATIONS, ROUNDINGS, SCHEMES, QuantConfig, load_bits_file, parse_bits

__all__ = ["quant_options", "config_from_options", "quantize_from_options", "load_optimized", "QUANT_OPTION_NAMES"]

#: keyword names the decorator adds (so commands can split their kwargs)
QUANT_OPTION_NAMES = (
    "scheme", "per_channel", "wbits", "abits", "bits", "calibration", "clamp_sigma",
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
        click.option("--wbits", type=int, default=_DEFAULT.wbits, show_default=True, help="Weight bits (2..16)."),
        click.option("--abits", type=int, default=_DEFAULT.abits, show_default=True, help="Activation bits (2..16)."),
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


def config_from_options(**kwargs) -> QuantConfig:
    """Build a validated QuantConfig from the options (unknown keys are ignored).

    Raises
    ------
    OptionError
        Bad scheme, bits, per-layer spec or file; one line naming the problem.
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
    if kwargs.get("auto_bits") and kwargs.get("budget_kbit") is None and kwargs.get("agreement_floor") is None:
        raise OptionError("--auto-bits needs --budget-kbit KBIT or --agreement-floor FRACTION")
    if kwargs.get("budget_kbit") is not None and not kwargs["budget_kbit"] > 0:
        raise OptionError(f"--budget-kbit must be > 0, not {kwargs['budget_kbit']!r}")
    floor = kwargs.get("agreement_floor")
    if floor is not None and not 0.0 < floor <= 1.0:
        raise OptionError(f"--agreement-floor must be a fraction in (0, 1], not {floor!r}")
    return QuantConfig(
        scheme=kwargs.get("scheme", _DEFAULT.scheme),
        per_channel=kwargs.get("per_channel", _DEFAULT.per_channel),
        wbits=kwargs.get("wbits", _DEFAULT.wbits),
        abits=kwargs.get("abits", _DEFAULT.abits),
        layer_bits=layer_bits,
        calibration=kwargs.get("calibration") or _DEFAULT.calibration,
        clamp_sigma=kwargs.get("clamp_sigma"),
        cle=bool(kwargs.get("cle", _DEFAULT.cle)),
        bias_correction=bool(kwargs.get("bias_correction", _DEFAULT.bias_correction)),
        rounding=kwargs.get("rounding", _DEFAULT.rounding),
        mbits=kwargs.get("mbits", _DEFAULT.mbits),
        input_range=_parse_range(kwargs.get("input_range")),
    )


def load_optimized(model):
    """Import an ONNX model and run the default optimization pipeline.

    A pre-quantized model (onnxruntime QDQ, or QONNX ``Quant`` nodes) loses its
    quantization nodes and keeps their parameters in ``graph.meta["fixed_qparams"]``.
    """
    import onnx

    from ..ir.onnx_import import from_onnx, load_model
    from ..passes import optimize
    from ..quant.qdq_import import follow_fusion, is_quantized, strip_quantization

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception:  # unreadable: let the importer say why, in one line
        proto = None
    if proto is None or not is_quantized(proto):
        return optimize(load_model(model))
    float_model, params = strip_quantization(onnx.load(str(model)))
    graph = from_onnx(float_model, name=Path(model).stem)
    params = follow_fusion(graph, params)
    graph = optimize(graph)
    graph.meta["fixed_qparams"] = params
    return graph


def quantize_from_options(graph, calib_x: np.ndarray | None, **kwargs):
    """Quantize ``graph`` as the options say; returns ``(qgraph, config, curve)``.

    ``curve`` is the auto-bits trade-off (list of dicts) or None. Without calibration
    data the calibration is ``none``; asking for another one then is an OptionError.
    """
    from ..quant import quantize

    config = config_from_options(**kwargs)
    asked = kwargs.get("calibration")
    if calib_x is None and asked not in (None, "none"):
        raise OptionError(f"--calibration {asked} needs calibration data: pass --calib CALIB.npz (or use --calibration none)")
    if calib_x is not None and asked == "none":
        calib_x = None
    curve = None
    if kwargs.get("auto_bits"):
        if calib_x is None:
            raise OptionError("--auto-bits measures each layer's sensitivity on data: pass --calib CALIB.npz")
        from ..quant.autobits import auto_bits

        config, curve = auto_bits(graph, config, calib_x, budget_kbit=kwargs.get("budget_kbit"),
                                  agreement_floor=kwargs.get("agreement_floor"))
    return quantize(graph, config, calib_x), config, curve
