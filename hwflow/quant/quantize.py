"""``quantize(graph, config, calib) -> QGraph``: the float plan to integer layers.

Steps: lower the graph to float layers (:mod:`._lower`), apply weight clamping and
cross-layer equalization, find every activation's real range (calibration data, or
propagation without data), give each tensor its scale and zero point (tensors that
must share them — MaxPool in/out, Concat inputs/output — are unified), then emit one
QLayer per float layer following the contract in :mod:`hwflow.quant.qgraph`.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, OptionError
from ..ir.graph import Graph
from .reference import acc_bounds, run_layer
from ._feval import run_plan
from ._lower import FLayer, Plan, act_fn, lower
from ._schemes import make_scheme
from ._scheme import fixed_point, symmetric_act_scale
from .arith import int_range
from .calibrate import calibrate_range, subsample
from .calibrate_none import propagate_moments, propagate_ranges
from .config import QuantConfig
from .gptq import gptq_codes
from .qgraph import QGraph, QLayer, QTensor
from .recover import bias_correction, clamp_weights, equalize

__all__ = ["quantize", "quantize_plan", "layer_names"]

_INT64_MAX = (1 << 63) - 1


def layer_names(graph: Graph) -> list[str]:
    """The names ``--bits LAYER=W/A`` accepts (one per QLayer), in execution order."""
    return [l.name for l in lower(graph).layers]


def quantize(graph: Graph, config: QuantConfig | None = None, calib: np.ndarray | None = None) -> QGraph:
    """Quantize an (optimized) float graph into an integer QGraph.

    Parameters
    ----------
    graph : Graph
        One input, one output; Conv/Gemm/MatMul, Add, BatchNormalization, pools,
        Concat, Relu/Clip/LeakyRelu/Sigmoid/Tanh, Flatten/Reshape and a host tail.
    config : QuantConfig, optional
        Defaults to ``QuantConfig()``.
    calib : numpy.ndarray, optional
        Calibration inputs ``(N, *input_shape[1:])``. Without it, ranges come from the
        weights (``calibration="none"``) whatever ``config.calibration`` says.
        A pre-quantized model (``graph.meta["fixed_qparams"]``, see
        :mod:`hwflow.quant.qdq_import`) keeps its own scales, zero points and widths.

    Returns
    -------
    QGraph
        ``attrs`` records the scheme, calibration and per-layer float details.

    Raises
    ------
    OptionError
        Unknown layer in ``config.layer_bits``, or an accumulator beyond int64.
    UnsupportedOpError
        An op the integer layers cannot express.
    """
    config = QuantConfig() if config is None else config
    plan = lower(graph)
    config.check_layers([l.name for l in plan.layers])
    return quantize_plan(plan, config, calib, graph.meta.get("fixed_qparams"))


def _union_groups(plan: Plan) -> dict[str, str]:
    """Tensor -> representative of the tensors that must share scale and zero point."""
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    for layer in plan.layers:
        if layer.op in ("maxpool", "concat"):
            for t in layer.inputs:
                union(layer.output, t)
    tensors = [plan.input] + [l.output for l in plan.layers]
    return {t: find(t) for t in tensors}


def quantize_plan(plan: Plan, config: QuantConfig, calib: np.ndarray | None = None,
                  fixed: dict | None = None, range_cache: dict | None = None) -> QGraph:
    """:func:`quantize` on an already lowered plan (the plan's weights are modified).

    ``fixed`` holds parameters of a pre-quantized model (:mod:`.qdq_import`).
    ``range_cache`` (a dict kept by the caller) memoizes calibrated activation ranges
    across calls that differ only in weight widths (auto-bits).
    """
    fixed = {"tensors": dict((fixed or {}).get("tensors", {})), "weights": (fixed or {}).get("weights", {})}
    if fixed["weights"]:  # a pre-quantized model keeps its weights and biases exactly as given
        config = config.with_(cle=False, clamp_sigma=None, bias_correction=False)
    if fixed["tensors"]:
        _rescale_concat_inputs(plan, fixed["tensors"])
    scheme = make_scheme(config.scheme, config.mbits)
    if config.clamp_sigma is not None:
        clamp_weights(plan, config.clamp_sigma)
    if config.cle:
        equalize(plan)
    method = config.calibration if calib is not None else "none"
    env = None
    if calib is not None:
        calib = np.asarray(calib, dtype=np.float64)
        want = plan.shapes[plan.input][1:]
        if calib.ndim < 1 or calib.shape[0] == 0 or int(np.prod(calib.shape[1:])) != int(np.prod(want)):
            raise DataError(f"calibration data has shape {calib.shape!r}, the model expects (N, {', '.join(map(str, want))})")
        env = run_plan(plan, calib)
    producer = {l.output: l for l in plan.layers}
    abits = {t: config.bits_of(producer[t].name)[1] if t in producer else config.abits
             for t in [plan.input] + list(producer)}

    input_range = config.input_range or (-1.0, 1.0)
    if method == "none":
        none_ranges = propagate_ranges(plan, input_range)
    moments = propagate_moments(plan, input_range) if config.bias_correction and env is None else None

    def tensor_range(names: list[str], bits: int) -> tuple[tuple[float, float], np.ndarray | None]:
        key = (method, tuple(names), bits)
        if range_cache is not None and key in range_cache:
            return range_cache[key]
        rv = _tensor_range(names, bits)
        if range_cache is not None:
            range_cache[key] = rv
        return rv

    def _tensor_range(names: list[str], bits: int) -> tuple[tuple[float, float], np.ndarray | None]:
        if method == "none":
            lo = min(none_ranges[t][0] for t in names)
            hi = max(none_ranges[t][1] for t in names)
            return (lo, hi), None
        values = np.concatenate([subsample(env[t]) for t in names])
        # The network input keeps its full observed range: it is quantized on the host
        # from data with a known range, often discrete (pixels), where clipping-based
        # methods find spurious optima.
        how = "minmax" if plan.input in names else method
        return calibrate_range(how, values, bits, scheme.act_params, config.percentile), subsample(values, 1 << 16)

    # scales and zero points, one per group of tensors that must agree
    rep = _union_groups(plan)
    groups: dict[str, list[str]] = {}
    for t, r in rep.items():
        groups.setdefault(r, []).append(t)
    tensors: dict[str, QTensor] = {}
    no_zp = _zero_point_overflows(plan, abits, config) if scheme.zero_points else set()
    for members in groups.values():
        bits = max(abits[t] for t in members)
        pinned = [fixed["tensors"][t] for t in members if t in fixed["tensors"]]
        if pinned:  # a pre-quantized model said so; where the contract makes several
            scale, zp, bits = pinned[-1]  # tensors share one scale, the last (Concat's output) wins
            # (conflicting Concat inputs were given their own rescale layer above)
        elif no_zp.intersection(members):  # the fold -z·Σw would not fit the int32 bias
            scale, zp = symmetric_act_scale(*tensor_range(members, bits)[0], bits), 0
        else:
            (lo, hi), vals = tensor_range(members, bits)
            scale, zp = scheme.act_params(lo, hi, bits, vals)
        for t in members:
            tensors[t] = QTensor(t, plan.shapes[t], bits, scale, zp)

    # Codes of the network quantized so far, on (up to 1024) calibration samples: the
    # inputs that GPTQ and bias correction see are the ones the integer network sees.
    qenv = None
    if env is not None:
        nq = min(len(calib), 1024)
        qenv = {plan.input: tensors[plan.input].quantize(env[plan.input][:nq])}
    layers: list[QLayer] = []
    details: dict[str, dict] = {}
    for fl in plan.layers:
        ins = [tensors[t] for t in fl.inputs]
        out = tensors[fl.output]
        wbits = config.bits_of(fl.name)[0]
        pre = None
        if fl.lut is not None and fl.op != "lut":
            if fl.pre in fixed["tensors"]:
                s, z, pbits = fixed["tensors"][fl.pre]
                pre = QTensor(fl.pre, out.shape, out.bits, s, z) if pbits == out.bits else None
            if pre is None:
                (lo, hi), vals = tensor_range([fl.pre], out.bits)
                s, z = scheme.act_params(lo, hi, out.bits, vals)
                pre = QTensor(fl.pre, out.shape, out.bits, s, z)
        x_hat = None
        if qenv is not None and fl.has_weight:
            x_hat = ins[0].dequantize(qenv[fl.inputs[0]])
        bc = None
        if config.bias_correction and fl.has_weight:  # empirical with data, else analytical
            bc = (env[fl.inputs[0]][: len(x_hat)], x_hat) if env is not None else (moments[fl.inputs[0]][0], None)
        wfix = _fixed_weight(fl, fixed["weights"])
        gx = None  # imported weights keep their codes; without data there is no H
        if config.rounding == "gptq" and x_hat is not None and wfix is None:
            gx = x_hat
        ql, info = _emit(fl, ins, out, pre, wbits, scheme, config, bc, wfix, gx)
        bound = acc_bounds(ql, ins)
        if max(abs(bound[0]), abs(bound[1])) * int(ql.m.max()) > _INT64_MAX:
            raise OptionError(
                f"layer {fl.name!r}: accumulator x multiplier can reach {max(map(abs, bound)) * int(ql.m.max())}, "
                f"beyond int64; use fewer bits (--wbits/--abits) or a smaller --mbits"
            )
        layers.append(ql)
        details[fl.name] = info
        if qenv is not None:
            qenv[fl.output] = run_layer(ql, [qenv[t] for t in fl.inputs], ins, out)
    tail_inputs = plan.output
    qg = QGraph(plan.name, tensors, layers, plan.input, tail_inputs, list(plan.host_tail))
    qg.attrs.update(scheme=config.scheme, calibration=f"imported (+{method})" if fixed["tensors"] else method,
                    per_channel=config.per_channel, layers=details)
    return qg


def _rescale_concat_inputs(plan: Plan, pinned: dict) -> None:
    """Give a Concat input whose imported scale differs from the Concat's its own
    requantizing layer (a 1x1 average pool: ``q - z_in`` rescaled, exact in the contract).

    The contract makes Concat inputs share the output's scale; a pre-quantized model
    need not, and forcing one scale on both sides would drop what the other encodes
    (e.g. a ReLU implied by a zero point at the bottom of the range).
    """
    for cat in [l for l in plan.layers if l.op == "concat"]:
        want = pinned.get(cat.output)
        if want is None:
            continue
        for i, t in enumerate(cat.inputs):
            if pinned.get(t, want) == want or len(plan.shapes[t]) != 4:
                continue
            new = f"{t}::rescaled"
            layer = FLayer(f"{cat.name}_rescale{i}", "avgpool", [t], new, nodes=list(cat.nodes))
            plan.layers.insert(plan.layers.index(cat), layer)
            plan.shapes[new] = plan.shapes[t]
            pinned[new] = want
            cat.inputs[i] = new


def _fixed_weight(fl: FLayer, weights: dict) -> dict | None:
    """The imported scale and width of ``fl``'s weight: by initializer name, else by value."""
    if not fl.has_weight or not weights:
        return None
    if fl.weight_name in weights:
        return weights[fl.weight_name]
    for spec in weights.values():
        v = spec["value"]
        for cand in (v, v.T if v.ndim == 2 else v):
            if cand.shape == fl.weight.shape and np.allclose(cand, fl.weight, rtol=1e-6, atol=1e-12):
                return spec
    return None


def _zero_point_overflows(plan: Plan, abits: dict[str, int], config: QuantConfig) -> set[str]:
    """Tensors read by a Conv/Gemm whose zero-point fold ``z·Σw`` could pass 2**30.

    Only wide layers (about 12+ activation bits with 12+ weight bits) get there; their
    inputs keep ``z = 0``, which costs at most one bit out of many.
    """
    out = set()
    for fl in plan.layers:
        if fl.has_weight:
            k = fl.weight[0].size
            fold = (1 << (abits[fl.inputs[0]] - 1)) * k * (1 << (config.bits_of(fl.name)[0] - 1))
            if fold >= 1 << 30:
                out.add(fl.inputs[0])
    return out


def _multiplier(scheme, r: np.ndarray, fl: FLayer):
    try:
        return scheme.multiplier(r)
    except ValueError:  # pow2 on scales that are not (an imported model's)
        raise OptionError(
            f"layer {fl.name!r}: the model's scales give a requantizer ratio {float(np.ravel(r)[0]):.6g} that is not "
            f"a power of two; use --scheme symmetric or asymmetric"
        ) from None


def _round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (as QTensor.quantize does)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _clamp_codes(fl: FLayer, space: QTensor) -> tuple[int, int]:
    """``lo``/``hi`` of the requantized code: the code range tightened by Relu/Clip."""
    lo, hi = space.range
    if fl.clamp is None:
        return lo, hi
    z, s = space.zero_point, space.scale
    if fl.clamp["op"] == "Relu":
        return max(lo, z), hi
    cmin, cmax = fl.clamp.get("min"), fl.clamp.get("max")
    if cmin is not None:
        lo = max(lo, min(hi, z + int(np.ceil(cmin / s - 1e-9))))
    if cmax is not None:
        hi = min(hi, max(lo, z + int(np.floor(cmax / s + 1e-9))))
    return lo, hi


def _lut_table(fn, q: np.ndarray, space: QTensor, out: QTensor) -> np.ndarray:
    return out.quantize(fn(space.dequantize(q)))


def _emit(fl: FLayer, ins: list[QTensor], out: QTensor, pre: QTensor | None, wbits: int, scheme,
          config: QuantConfig, bc: tuple | None, wfix: dict | None = None,
          gptq_x: np.ndarray | None = None) -> tuple[QLayer, dict]:
    common = dict(name=fl.name, inputs=list(fl.inputs), output=fl.output, kernel=fl.kernel,
                  strides=fl.strides, pads=fl.pads, groups=fl.groups)
    attrs = {"scheme": scheme.name, "nodes": list(fl.nodes)}
    info: dict = {"op": fl.op}
    if fl.op == "maxpool":
        return QLayer(op="maxpool", lo=out.range[0], hi=out.range[1], attrs=attrs, **common), info
    if fl.op == "concat":
        return QLayer(op="concat", lo=out.range[0], hi=out.range[1], attrs=attrs, **common), info
    if fl.op == "lut":
        tin = ins[0]
        lo, hi = tin.range
        table = _lut_table(act_fn(fl.lut), np.arange(lo, hi + 1), tin, out)
        attrs["activation"] = fl.lut["op"]
        if "alpha" in fl.lut:
            attrs["alpha"] = fl.lut["alpha"]
        return QLayer(op="lut", m=[1], n=[0], lo=lo, hi=hi, lut=table, lut_zero_point=0, attrs=attrs, **common), info
    space = pre if pre is not None else out  # the code space the requantizer writes
    lo, hi = _clamp_codes(fl, space)
    lut = None
    if fl.lut is not None:
        lut = _lut_table(act_fn(fl.lut), np.arange(lo, hi + 1), space, out)
        attrs.update(activation=fl.lut["op"], lut_scale=space.scale)
        if "alpha" in fl.lut:
            attrs["alpha"] = fl.lut["alpha"]
    if fl.clamp is not None:
        attrs["clamp"] = dict(fl.clamp)
    extra = dict(lo=lo, hi=hi, lut=lut, lut_zero_point=space.zero_point if lut is not None else 0, attrs=attrs)
    if fl.op == "add":
        (a, b), s_o = ins, space.scale
        ra, rb = a.scale / s_o, b.scale / s_o
        if scheme.name == "pow2":
            n = int(max(-np.round(np.log2(ra)), -np.round(np.log2(rb))))
            ma, mb = (int(round(r * 2.0 ** n)) for r in (ra, rb))
        else:
            _, nn = fixed_point(max(ra, rb), config.mbits)
            n = int(nn[0])
            ma, mb = (int(round(r * 2.0 ** n)) for r in (ra, rb))
        return QLayer(op="add", m=[1], n=[n], add_m=(ma, mb), mbits=1, **extra, **common), info
    tin = ins[0]
    if fl.op == "avgpool":
        k = fl.kernel[0] * fl.kernel[1]
        c = tin.shape[1]
        r = np.array([tin.scale / (k * space.scale)])
        if scheme.name == "pow2" and k & (k - 1):  # 1/k is no power of two: needs a multiplier
            m, n = fixed_point(r, config.mbits)
            mbits = config.mbits
            attrs["note"] = f"1/{k} needs a multiplier even in the pow2 scheme"
        else:
            m, n, mbits = _multiplier(scheme, r, fl)
        bias = np.full(c, -k * tin.zero_point, dtype=np.int64)
        return QLayer(op="avgpool", bias=bias, m=m, n=n, mbits=mbits, **extra, **common), info
    # conv / gemm
    w = fl.weight
    cout = w.shape[0]
    if wfix is not None:
        s_w, wbits = np.asarray(wfix["scale"], np.float64), int(wfix["bits"])
    else:
        s_w = scheme.weight_scale(w, wbits, config.per_channel)
    s_wc = np.broadcast_to(s_w, (cout,))
    wlo, whi = int_range(wbits)
    if gptq_x is not None:
        cands = [np.array(s_wc, np.float64)] + [np.array(c, np.float64) for c in
                                                 scheme.weight_scale_candidates(w, wbits, config.per_channel)]
        w_q, s_wc = gptq_codes(fl, cands, wbits, gptq_x, per_channel=config.per_channel)
        s_w = s_wc if config.per_channel else s_wc[:1]
    else:
        w_q = np.clip(_round(w / s_wc.reshape(-1, *([1] * (w.ndim - 1)))), wlo, whi).astype(np.int64)
    bias_f = fl.bias
    if bc is not None:
        bias_f = bias_correction(fl, w_q * s_wc.reshape(-1, *([1] * (w.ndim - 1))), *bc)
    s_acc = tin.scale * s_wc
    b_q = _round(bias_f / s_acc).astype(np.int64) - tin.zero_point * w_q.reshape(cout, -1).sum(axis=1)
    blo, bhi = int_range(32)
    clipped = int(((b_q < blo) | (b_q > bhi)).sum())
    b_q = np.clip(b_q, blo, bhi)
    r = tin.scale * s_w / space.scale
    m, n, mbits = _multiplier(scheme, r, fl)
    info.update(_weight_analysis(w, w_q, s_wc, wbits), bias_clipped=clipped)
    attrs["w_scale"] = [float(v) for v in s_w]
    if clipped:
        attrs["bias_clipped"] = clipped
    return QLayer(op=fl.op, weight=w_q, bias=b_q, m=m, n=n, mbits=mbits, wbits=wbits, **extra, **common), info


def _weight_analysis(w: np.ndarray, w_q: np.ndarray, s_c: np.ndarray, wbits: int) -> dict:
    """The fixed-point view of one weight tensor (``hwflow eval --analysis``)."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    s = s_c.reshape(shape)
    deq = w_q * s
    a = np.abs(w[w != 0])
    lo, hi = int_range(wbits)
    v = w / s
    return {
        "wbits": wbits,
        "w_log2_range": (float(np.log2(a.min())) if a.size else 0.0, float(np.log2(a.max())) if a.size else 0.0),
        "scale_log2": (float(np.log2(s_c.min())), float(np.log2(s_c.max()))),
        "pct_below_precision": float(100.0 * ((w_q == 0) & (w != 0)).sum() / max(w.size, 1)),
        "pct_clipped": float(100.0 * ((v > hi + 0.5) | (v < lo - 0.5)).sum() / max(w.size, 1)),
        "max_abs_error": float(np.abs(deq - w).max()),
    }
