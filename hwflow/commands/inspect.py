"""``hwflow inspect MODEL.onnx``: one row per layer (shapes, parameters, MACs), then totals;
with ``--target``, whether the design fits (:mod:`hwflow.schedule.fit`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import numpy as np

from ..config import FUSE_MODES, ScheduleConfig, check_positive
from ..errors import OptionError
from ..ir.graph import Graph, Node
from ..ir.ops import OPS, QONNX_OPS
from ._checks import checked
from ._prune_options import prune_config, prune_options
from ._quant_options import quant_config, quant_options

__all__ = ["inspect_cmd", "layer_stats"]


def _macs(graph: Graph, node: Node) -> int:
    out = graph.shape(node.outputs[0])
    if node.op == "Conv":
        w = graph.shape(node.inputs[1])  # (M, C/group, k...)
        return int(np.prod(out, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))
    if node.op == "Gemm":
        a = graph.shape(node.inputs[0])
        k = a[0] if node.attrs.get("transA") else a[1]
        return int(np.prod(out, dtype=np.int64)) * int(k)
    if node.op == "MatMul":
        return int(np.prod(out, dtype=np.int64)) * int(graph.shape(node.inputs[0])[-1])
    return 0


def _param(graph: Graph, t: str) -> int:
    """Elements of ``t`` if it is a float constant, or a QONNX quantizer of one (the
    weights of a QAT model; older Brevitas transposes them after the quantizer); else 0."""
    if not t:
        return 0
    src = graph.producer(t)
    if src is not None and src.op == "Transpose" and src.inputs[0]:
        t, src = src.inputs[0], graph.producer(src.inputs[0])
    if src is not None and src.op in QONNX_OPS and graph.tensors[src.inputs[0]].is_const:
        t = src.inputs[0]
    tensor = graph.tensors[t]
    return tensor.size if tensor.is_const and tensor.dtype.kind == "f" else 0


def layer_stats(graph: Graph) -> list[dict[str, Any]]:
    """Per node: name, op, input/output shape, parameters and MACs (batch 1).

    A layer's parameters are the elements of its constant float inputs, or of the
    constants a QONNX ``Quant``/``BipolarQuant`` quantizes for it (the quantizer's row
    counts none); a constant shared by several layers counts at each.
    """
    rows = []
    for node in graph.nodes:
        acts = [t for t in node.inputs if t and not graph.tensors[t].is_const]
        params = 0
        # learned parameters (a Reshape's target shape is not one)
        if OPS[node.op].params and node.op not in QONNX_OPS:
            params = sum(_param(graph, t) for t in node.inputs)
            acts = [t for t in acts if not _param(graph, t)]
        row: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "input_shape": list(graph.shape(acts[0])) if acts else None,
            "output_shape": list(graph.shape(node.outputs[0])),
            "params": int(params),
            "macs": _macs(graph, node),
        }
        if node.attrs.get("activation"):
            row["activation"] = node.attrs["activation"]["op"]
        if node.attrs.get("host"):
            row["host"] = True
        rows.append(row)
    return rows


def _shape(s: list[int] | None) -> str:
    return "-" if s is None else "×".join(str(d) for d in s)


def _print_table(graph: Graph, rows: list[dict[str, Any]], raw: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    title = f"{graph.name} ({'as imported' if raw else 'optimized'})"
    table = Table(title=title, show_footer=True)
    table.add_column("#", justify="right", footer="")
    table.add_column("layer", footer="total")
    table.add_column("op", footer=f"{len(rows)} layers")
    table.add_column("input")
    table.add_column("output")
    table.add_column("params", justify="right", footer=f"{sum(r['params'] for r in rows):,}")
    table.add_column("MACs", justify="right", footer=f"{sum(r['macs'] for r in rows):,}")
    for i, r in enumerate(rows):
        op = r["op"] + (f"+{r['activation']}" if "activation" in r else "") + (" (host)" if r.get("host") else "")
        table.add_row(
            str(i), r["name"], op, _shape(r["input_shape"]), _shape(r["output_shape"]),
            f"{r['params']:,}", f"{r['macs']:,}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"params: {sum(r['params'] for r in rows):,}   MACs: {sum(r['macs'] for r in rows):,}   "
        f"input: {graph.inputs[0]} {_shape(list(graph.shape(graph.inputs[0])))}"
    )


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the table (and the fit verdict) as JSON.")
@click.option("--raw", is_flag=True, help="Show the graph as imported, before optimization.")
@click.option("--target", "-t", default=None,
              help="Also say whether the design fits this target (name or TOML), from shapes and the options below.")
@click.option("--pe", type=int, default=None, callback=checked(check_positive, "--pe"),
              help="Output channels in parallel (default: the target's).")
@click.option("--simd", type=int, default=None, callback=checked(check_positive, "--simd"),
              help="Inputs per PE in parallel (default: the target's).")
@click.option("--fuse", type=click.Choice(FUSE_MODES), default="auto", show_default=True,
              help="MaxPool fusion, as for compile.")
@quant_options
@prune_options
def inspect_cmd(model: str, as_json: bool, raw: bool, target: str | None, pe, simd, fuse, **options) -> None:
    """Show MODEL's layers with shapes, parameters and MACs, then totals.

    The graph is shown after hwflow's optimization passes (BatchNorm folded,
    activations fused...) unless --raw is given. With --target, also the fit verdict
    `hwflow compile` checks before quantizing: weight ROM, activation RAM and DSPs for
    the options given (--wbits, --abits, --bits, --prune-channels, --share, --pe, --simd),
    and when the design is too big, the nearest options that fit.

    \b
    Examples:
      hwflow inspect examples/models/digits_cnn.onnx
      hwflow inspect model.onnx --raw --json
      hwflow inspect big.onnx --target fpga-medium --wbits 4
    """
    from ..flow import load_graph

    if raw and target is not None:
        raise OptionError("--target sizes the optimized graph; drop --raw")
    graph = load_graph(model, optimized=not raw)
    rows = layer_stats(graph)
    fit = None
    if target is not None:
        from ..schedule.fit import fit_check

        quant = quant_config(None, **options)
        fit = fit_check(graph, target, quant, prune_config(**options), ScheduleConfig(pe=pe, simd=simd, fuse=fuse))
    if as_json:
        doc = {
            "model": graph.name,
            "optimized": not raw,
            "input": {"name": graph.inputs[0], "shape": list(graph.shape(graph.inputs[0]))},
            "outputs": [{"name": t, "shape": list(graph.shape(t))} for t in graph.outputs],
            "layers": rows,
            "totals": {
                "layers": len(rows),
                "params": sum(r["params"] for r in rows),
                "macs": sum(r["macs"] for r in rows),
            },
        }
        if fit is not None:
            doc["fit"] = fit.to_json()
        click.echo(json.dumps(doc, indent=2))
    else:
        _print_table(graph, rows, raw)
        if fit is not None:
            click.echo(f"fit: {fit.verdict}: {fit.message()}")
