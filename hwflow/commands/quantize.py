"""``hwflow quantize``: write the quantized model (QDQ ONNX + JSON of integer parameters)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..data import load_data
from ..errors import OptionError
from ..flow import atomic_directory
from ._prune_options import finish_pruning, prune_graph, prune_options
from ._quant_options import load_optimized, quant_options, quantize_from_options

__all__ = ["quantize_cmd"]


@click.command("quantize")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calib", "calib", type=click.Path(dir_okay=False), default=None,
              help="Calibration data (.npz with x, or .npy); without it ranges come from the weights.")
@quant_options
@prune_options
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Output directory (written atomically): model_qdq.onnx and qgraph.json.")
def quantize_cmd(model, calib, out, **kwargs):
    """Quantize MODEL and write OUT/model_qdq.onnx (runs in onnxruntime) and OUT/qgraph.json.

    \b
    Examples:
      hwflow quantize examples/models/digits_mlp.onnx --calib examples/models/digits_mlp_calib.npz -o out/
    """
    from ..quant.qdq import export_qdq
    from ..quant.serialize import qgraph_to_dict

    graph = load_optimized(model)
    calib_x = load_data(calib, graph.shape(graph.inputs[0]))[0] if calib else None
    graph, pinfo = prune_graph(graph, calib_x, **kwargs)
    qg, config, curve = quantize_from_options(graph, calib_x, **kwargs)
    storage = finish_pruning(qg, pinfo)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"output {str(out)!r} exists and is not a directory")
    with atomic_directory(out) as tmp:
        export_qdq(qg, tmp / "model_qdq.onnx")
        doc = qgraph_to_dict(qg)
        doc["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.__dict__.items()}
        doc["config"]["layer_bits"] = {k: list(v) for k, v in config.layer_bits.items()}
        if curve is not None:
            doc["auto_bits"] = curve
        if storage is not None:
            doc["storage"] = storage
        (tmp / "qgraph.json").write_text(json.dumps(doc))
    click.echo(f"wrote {out}/model_qdq.onnx and {out}/qgraph.json ({len(qg.layers)} layers, "
               f"{qg.weight_bits()} weight bits, {config.scheme})")
