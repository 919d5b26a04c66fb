"""``hwflow eval``: float vs quantized accuracy, agreement, SQNR and storage."""

from __future__ import annotations

import json
import math

import click

from .._files import jsonable
from ..data import load_data
from ._prune_options import prune_config, prune_options
from ._quant_options import auto_bits_config, quant_config, quant_options

__all__ = ["eval_cmd"]


@click.command("eval")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False),
              help="Test data: .npz with x (and optional labels y), or .npy holding x.")
@click.option("--calib", "calib", type=click.Path(dir_okay=False), default=None,
              help="Calibration data (same format); without it ranges come from the weights.")
@quant_options
@prune_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--analysis", is_flag=True, help="Add the per-layer fixed-point analysis of the weights.")
def eval_cmd(model, data, calib, as_json, analysis, **kwargs):
    """Quantize MODEL and compare it with the float model on --data.

    \b
    Prints float and quantized accuracy (when the data has labels), top-1 agreement,
    logit SQNR in dB and weight storage in bits.

    \b
    Examples:
      hwflow eval examples/models/digits_cnn.onnx --data examples/models/digits_cnn_test.npz \\
          --calib examples/models/digits_cnn_calib.npz --wbits 4 --analysis
    """
    from ..flow import load_graph, quantize_graph
    from ..quant.evaluate import evaluate

    quant, auto_bits, prune = quant_config(calib, **kwargs), auto_bits_config(**kwargs), prune_config(**kwargs)
    graph = load_graph(model)
    shape = graph.shape(graph.inputs[0])
    x, y = load_data(data, shape)
    calib_x = load_data(calib, shape)[0] if calib else None
    q = quantize_graph(graph, calib_x, quant, prune=prune, auto_bits=auto_bits)
    qg, config, curve, storage = q.qgraph, q.config, q.curve, q.storage
    res = evaluate(graph, qg, x, y)
    res.update(scheme=config.scheme, per_channel=config.per_channel, calibration=qg.attrs["calibration"],
               samples=int(len(x)))
    if curve is not None:
        res["auto_bits"] = curve
        res["layer_bits"] = {k: list(v) for k, v in config.layer_bits.items()}
    if not config.int_only:  # which layers the formats reached (binary/ternary spare the edges)
        res["layer_formats"] = {l.name: f"{l.wformat}{l.wbits}/a{qg.tensors[l.output].bits}"
                                for l in qg.layers if l.weight is not None}
    layers = {name: info for name, info in qg.attrs["layers"].items() if "wbits" in info}
    if analysis:
        res["analysis"] = layers
    if storage is not None:
        res["storage"] = storage
    if as_json:
        click.echo(json.dumps(jsonable(res), indent=2, allow_nan=True))
        return
    from ..quant.qonnx import is_qonnx

    how = ("pre-quantized model: its own scales and widths" if "fixed_qparams" in graph.meta or is_qonnx(graph) else
           f"{config.scheme}, {'per-channel' if config.per_channel else 'per-tensor'}, "
           f"{'' if config.weights == 'int' else config.weights + ' '}w{config.wbits}/a{config.abits}")
    click.echo(f"model        {model}  ({len(x)} samples; {how}; calibration {res['calibration']})")
    if y is not None:
        if "scored_output" in res:
            click.echo(f"scored       the model's label output {res['scored_output']!r}")
        drop = 100 * (res["float_accuracy"] - res["quant_accuracy"])
        click.echo(f"float acc    {100 * res['float_accuracy']:.2f} %")
        click.echo(f"quant acc    {100 * res['quant_accuracy']:.2f} %  (drop {drop:+.2f} pp)")
    click.echo(f"agreement    {100 * res['agreement']:.2f} %")
    click.echo(f"logit SQNR   {res['sqnr_db']:.2f} dB")
    click.echo(f"weights      {res['weight_bits']} bits ({res['weight_bits'] / 8192:.2f} KiB)")
    if "layer_formats" in res:
        click.echo("layers       " + ", ".join(f"{k} {v}" for k, v in res["layer_formats"].items()))
    if curve is not None:
        click.echo("auto-bits    " + "  ".join(f"{p['kbit']:.1f}kbit:{100 * p['agreement']:.1f}%" for p in curve))
        click.echo("layer bits   " + ", ".join(f"{k}={w}/{a}" for k, (w, a) in config.layer_bits.items()))
    if storage is not None:
        from ..prune import format_storage

        click.echo("")
        click.echo(format_storage(storage))
    if analysis:
        click.echo("")
        click.echo(f"{'layer':<20}{'bits':>5}  {'|w| range (log2)':>17}  {'scale (log2)':>14}  "
                   f"{'below prec %':>12}  {'clipped %':>9}  {'max |err|':>10}")
        for name, a in layers.items():
            wr, sc = a["w_log2_range"], a["scale_log2"]
            scale = f"{sc[0]:.2f}" if math.isclose(sc[0], sc[1]) else f"{sc[0]:.1f}..{sc[1]:.1f}"
            click.echo(f"{name:<20}{a['wbits']:>5}  {f'{wr[0]:.1f}..{wr[1]:.1f}':>17}  {scale:>14}  "
                       f"{a['pct_below_precision']:>12.2f}  {a['pct_clipped']:>9.2f}  {a['max_abs_error']:>10.3g}")
