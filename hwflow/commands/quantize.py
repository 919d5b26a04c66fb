"""``hwflow quantize``: write the quantized model (QDQ ONNX + JSON of integer parameters)."""

from __future__ import annotations

from pathlib import Path

import click

from .._files import atomic_directory, dumps
from ..data import load_data
from ..errors import OptionError
from ._prune_options import prune_config, prune_options
from ._quant_options import auto_bits_config, quant_config, quant_options

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
    from ..flow import load_graph, quantize_graph
    from ..quant.qdq import export_qdq
    from ..quant.serialize import qgraph_to_dict

    quant, auto_bits, prune = quant_config(calib, **kwargs), auto_bits_config(**kwargs), prune_config(**kwargs)
    graph = load_graph(model)
    calib_x = load_data(calib, graph.shape(graph.inputs[0]))[0] if calib else None
    q = quantize_graph(graph, calib_x, quant, prune=prune, auto_bits=auto_bits)
    qg, config, curve, storage = q.qgraph, q.config, q.curve, q.storage
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"output {str(out)!r} exists and is not a directory")
    with atomic_directory(out) as tmp:
        export_qdq(qg, tmp / "model_qdq.onnx")
        doc = {**qgraph_to_dict(qg), "config": config}
        if curve is not None:
            doc["auto_bits"] = curve
        if storage is not None:
            doc["storage"] = storage
        (tmp / "qgraph.json").write_text(dumps(doc, indent=None))
    click.echo(f"wrote {out}/model_qdq.onnx and {out}/qgraph.json ({len(qg.layers)} layers, "
               f"{qg.weight_bits()} weight bits, {config.scheme})")
