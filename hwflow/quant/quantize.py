"""``quantize(graph, config, calib) -> QGraph``: the float plan to integer layers.

Steps: lower the graph to float layers (:mod:`._lower`), apply weight clamping and
cross-layer equalization, find every activation's real range (calibration data, or
propagation without data), give each tensor its scale and zero point (tensors that
must share them — MaxPool in/out, Concat inputs/output — are unified), then emit one
QLayer per float layer following the contract in :mod:`hwflow.quant.qgraph`.

With data, one streamed float pass over every calibration sample gives the ranges
(a fixed-size sketch of all of each tensor's values, :func:`._feval.calibration_pass`); GPTQ
and bias correction use the integer network on the first :func:`statistics_samples`
samples only, so the cost and memory stay bounded however much data is given.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, OptionError
from ..ir.graph import Graph
from .reference import acc_bounds, run_layer
from ._feval import calibration_pass
from ._lower import FLayer, Plan, act_fn, lower
from ._schemes import make_scheme
from ._scheme import fixed_point, symmetric_act_scale
from .arith import int_range
from .calibrate import RangeSketch, calibrate_range
from .calibrate_none import propagate_moments, propagate_ranges
from .config import EDGE_BITS, LayerSpec, QuantConfig
from .gptq import gptq_codes
from .qgraph import QGraph, QLayer, QTensor
from .qonnx import is_qonnx, quantize_qonnx
from .recover import bias_correction, clamp_weights, equalize
from .wformat import WeightFormat, choose_scale, scale_candidates

__all__ = ["quantize", "quantize_plan", "layer_names", "statistics_samples"]

_INT64_MAX = (1 << 63) - 1

#: The statistics GPTQ and bias correction use (Hessians, mean input patches) come from
#: the network quantized so far, run on the first calibration samples: enough samples for
#: about this many multiply-accumulates, at least :data:`MIN_STAT_SAMPLES` and at most
#: :data:`MAX_STAT_SAMPLES`. Activation ranges still see every sample.
STAT_MACS = 1 << 28
MIN_STAT_SAMPLES = 64
MAX_STAT_SAMPLES = 1024


def statistics_samples(plan: Plan, n: int) -> int:
    """How many of ``n`` calibration samples the statistics use (see :data:`STAT_MACS`).

    The integer network over them costs in proportion to samples x MACs; a small model
    keeps them all (up to :data:`MAX_STAT_SAMPLES`), a large one at least
    :data:`MIN_STAT_SAMPLES`, which a Conv's many output positions per sample make rows
    enough for its Hessian.
    """
    macs = sum(fl.weight.size * int(np.prod(plan.shapes[fl.output][2:], dtype=np.int64))
               for fl in plan.layers if fl.has_weight)
    return int(min(n, MAX_STAT_SAMPLES, max(MIN_STAT_SAMPLES, STAT_MACS // max(macs, 1))))


def layer_names(graph: Graph) -> list[str]:
    """The names ``--bits LAYER=W/A`` accepts (one per QLayer), in execution order."""
    if is_qonnx(graph):
        return [l.name for l in quantize_qonnx(graph).layers]
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
        :mod:`hwflow.quant.qdq_import`) keeps its own scales, zero points and widths; a
        QONNX model is met exactly (:mod:`hwflow.quant.qonnx`; ``config`` does not apply).

    Returns
    -------
    QGraph
        ``attrs`` records the scheme, calibration and per-layer float details.

    Raises
    ------
    OptionError
        Unknown layer in ``config.layer_bits``/``layer_weights``; a width its weight
        format does not take; 1-bit activations on a layer whose activation is not a
        sign; pot weights under ``asymmetric`` whose input zero point cannot fold into
        the int32 bias; an accumulator beyond int64.
    UnsupportedOpError
        An op the integer layers cannot express.
    """
    config = QuantConfig() if config is None else config
    if is_qonnx(graph):  # already quantized by its exporter: met exactly, config aside
        return quantize_qonnx(graph)
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
    values = first = None
    if calib is not None:
        calib = np.asarray(calib, dtype=np.float64)
        want = plan.shapes[plan.input][1:]
        if calib.ndim < 1 or calib.shape[0] == 0 or int(np.prod(calib.shape[1:])) != int(np.prod(want)):
            raise DataError(f"calibration data has shape {calib.shape!r}, the model expects (N, {', '.join(map(str, want))})")
        weight_inputs = {fl.inputs[0] for fl in plan.layers if fl.has_weight}
        # the integer network starts from the input; bias correction needs only the mean of
        # each weight layer's float input (it is linear in it: recover.mean_patch)
        values, first = calibration_pass(plan, calib, statistics_samples(plan, len(calib)), {plan.input},
                                         weight_inputs if config.bias_correction else set())
    producer = {l.output: l for l in plan.layers}
    specs = config.resolve([l.name for l in plan.layers], [l.name for l in plan.layers if l.has_weight])
    abits = {t: specs[producer[t].name].abits if t in producer else (config.abits if config.abits > 1 else EDGE_BITS)
             for t in [plan.input] + list(producer)}

    input_range = config.input_range or (-1.0, 1.0)
    if method == "none":
        none_ranges = propagate_ranges(plan, input_range)
    moments = propagate_moments(plan, input_range) if config.bias_correction and values is None else None

    def tensor_range(names: list[str], bits: int) -> tuple[tuple[float, float], RangeSketch | None]:
        key = (method, tuple(names), bits)
        if range_cache is not None and key in range_cache:
            return range_cache[key]
        rv = _tensor_range(names, bits)
        if range_cache is not None:
            range_cache[key] = rv
        return rv

    def _tensor_range(names: list[str], bits: int) -> tuple[tuple[float, float], RangeSketch | None]:
        if method == "none":
            lo = min(none_ranges[t][0] for t in names)
            hi = max(none_ranges[t][1] for t in names)
            return (lo, hi), None
        vals = RangeSketch.merge([values[t] for t in names])
        # The network input keeps its full observed range: it is quantized on the host
        # from data with a known range, often discrete (pixels), where clipping-based
        # methods find spurious optima.
        how = "minmax" if plan.input in names else method
        return calibrate_range(how, vals, bits, scheme.act_params, config.percentile), vals

    # scales and zero points, one per group of tensors that must agree
    rep = _union_groups(plan)
    groups: dict[str, list[str]] = {}
    for t, r in rep.items():
        groups.setdefault(r, []).append(t)
    tensors: dict[str, QTensor] = {}
    no_zp = _zero_point_overflows(plan, abits, specs) if scheme.zero_points else set()
    for members in groups.values():
        bits = max(abits[t] for t in members)
        pinned = [fixed["tensors"][t] for t in members if t in fixed["tensors"]]
        if pinned:  # a pre-quantized model said so; where the contract makes several
            scale, zp, bits = pinned[-1]  # tensors share one scale, the last (Concat's output) wins
            # (conflicting Concat inputs were given their own rescale layer above)
        elif bits == 1:  # bipolar: the sign's ±1
            _check_bipolar(members, producer, specs)
            scale, zp = 1.0, 0
        elif no_zp.intersection(members):  # the fold -z·Σw would not fit the int32 bias
            scale, zp = symmetric_act_scale(*tensor_range(members, bits)[0], bits), 0
        else:
            (lo, hi), vals = tensor_range(members, bits)
            scale, zp = scheme.act_params(lo, hi, bits, vals)
        for t in members:
            tensors[t] = QTensor(t, plan.shapes[t], bits, scale, zp)

    # Codes of the network quantized so far, on the statistics samples: the inputs that
    # GPTQ and bias correction see are the ones the integer network sees.
    qenv = None
    if first is not None:
        qenv = {plan.input: tensors[plan.input].quantize(first[plan.input])}
        last_use = {t: i for i, fl in enumerate(plan.layers) for t in fl.inputs}
    layers: list[QLayer] = []
    details: dict[str, dict] = {}
    for fl in plan.layers:
        ins = [tensors[t] for t in fl.inputs]
        out = tensors[fl.output]
        spec = specs[fl.name]
        pre = None
        if fl.lut is not None and fl.op != "lut" and out.bits > 1:
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
            bc = (first[fl.inputs[0]], x_hat) if first is not None else (moments[fl.inputs[0]][0], None)
        wfix = _fixed_weight(fl, fixed["weights"])
        gx = None  # imported weights keep their codes; without data there is no H
        if config.rounding == "gptq" and x_hat is not None and wfix is None:
            gx = x_hat
        ql, info = _emit(fl, ins, out, pre, spec, scheme, config, bc, wfix, gx)
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
            for t in fl.inputs:  # codes no later layer reads
                if last_use[t] == len(layers) - 1:
                    qenv.pop(t, None)
    tail_inputs = plan.output
    qg = QGraph(plan.name, tensors, layers, plan.input, tail_inputs, plan.host_tail, input_layout=plan.input_layout)
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


def _zero_point_overflows(plan: Plan, abits: dict[str, int], specs: dict[str, LayerSpec]) -> set[str]:
    """Tensors read by a Conv/Gemm whose zero-point fold ``z·Σw`` could pass 2**30.

    Only wide layers (about 12+ activation bits with 12+ weight bits) get there with
    int weights; their inputs keep ``z = 0``, which costs at most one bit out of many.
    pot weights reach ``2**14`` in 5 bits, so a wide pot5 layer gets there too: that is
    an error (the user asked for pot and asymmetric together; a silent ``z = 0`` would
    answer neither).

    Raises
    ------
    OptionError
        For a pot layer whose input zero point cannot fold.
    """
    out = set()
    for fl in plan.layers:
        if fl.has_weight:
            k = fl.weight[0].size
            spec = specs[fl.name]
            fmt = WeightFormat(spec.wformat, spec.wbits)
            fold = (1 << (abits[fl.inputs[0]] - 1)) * k * (1 << (fmt.value_bits - 1))
            if fold >= 1 << 30:
                if fmt.name == "pot":
                    raise OptionError(
                        f"layer {fl.name!r}: pot{fmt.wbits} weights (up to ±{fmt.top}) over {k} inputs cannot fold "
                        f"the asymmetric input's zero point into the int32 bias (|z·Σw| may reach {fold}); "
                        f"use --scheme symmetric or pow2, or fewer --wbits"
                    )
                out.add(fl.inputs[0])
    return out


def _check_bipolar(members: list[str], producer: dict, specs: dict[str, LayerSpec]) -> None:
    """Raise OptionError unless every tensor of a 1-bit group is written by a sign
    (a layer with a fused Sign, or a MaxPool/Concat of such tensors: same group)."""
    for t in members:
        fl = producer[t]  # the network input keeps EDGE_BITS, so every member has a producer
        if fl.op in ("maxpool", "concat") or (fl.lut is not None and fl.lut["op"] == "Sign"):
            continue
        act = fl.lut["op"] if fl.lut is not None else fl.clamp["op"] if fl.clamp is not None else "none"
        raise OptionError(
            f"layer {fl.name!r}: 1-bit activations (--abits 1) need a sign or threshold after the layer, and its "
            f"activation is {act}; give it wider activations, e.g. --bits {fl.name}={specs[fl.name].wbits}/8"
        )


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


def _threshold(fl: FLayer, ins: list[QTensor]) -> dict:
    """Requantizer and LUT of a layer writing bipolar codes (see :mod:`.qgraph`):
    ``+1`` iff ``acc >= 0``; a standalone sign compares its input code with its zero point."""
    if fl.op != "lut":
        return dict(m=[1], n=[0], mbits=1, lo=-1, hi=0, lut=[-1, 1], lut_zero_point=0)
    z, lowest = ins[0].zero_point, ins[0].range[0]
    up = int(z == lowest)  # lo = z - 1 would leave the code range: compare acc + 1 with z + 1
    return dict(m=[1], n=[0], mbits=1, lo=z - 1 + up, hi=z + up, lut=[-1, 1], lut_zero_point=up)


def _emit(fl: FLayer, ins: list[QTensor], out: QTensor, pre: QTensor | None, spec: LayerSpec, scheme,
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
    sign = out.bits == 1  # a threshold layer (quantize_plan checked the activation is a sign)
    if sign:
        attrs["activation"] = "Sign"
    if sign and fl.op == "lut":
        return QLayer(op="lut", attrs=attrs, **_threshold(fl, ins), **common), info
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
    threshold = _threshold(fl, ins) if sign else {}
    if sign:
        extra.update({k: threshold.pop(k) for k in ("lo", "hi", "lut", "lut_zero_point")})
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
        return QLayer(op="add", **{"m": [1], "n": [n], "mbits": 1, **threshold}, add_m=(ma, mb), **extra,
                      **common), info
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
        return QLayer(op="avgpool", bias=bias, **{"m": m, "n": n, "mbits": mbits, **threshold}, **extra,
                      **common), info
    # conv / gemm
    w = fl.weight
    cout = w.shape[0]
    shape = (-1,) + (1,) * (w.ndim - 1)
    fmt = WeightFormat(spec.wformat, spec.wbits)
    pow2 = scheme.name == "pow2"
    if wfix is not None:
        s_w, fmt = np.asarray(wfix["scale"], np.float64), WeightFormat("int", int(wfix["bits"]))
    elif fmt.name == "int":
        s_w = scheme.weight_scale(w, fmt.wbits, config.per_channel)
    else:
        s_w = choose_scale(fmt, w, config.per_channel, pow2)
    s_wc = np.broadcast_to(s_w, (cout,))
    if gptq_x is not None:
        more = (scheme.weight_scale_candidates(w, fmt.wbits, config.per_channel) if fmt.name == "int"
                else scale_candidates(fmt, np.array(s_wc, np.float64), pow2))
        cands = [np.array(s_wc, np.float64)] + [np.array(c, np.float64) for c in more]
        w_q, s_wc = gptq_codes(fl, cands, fmt, gptq_x, per_channel=config.per_channel)
        s_w = s_wc if config.per_channel else s_wc[:1]
    else:
        w_q = fmt.round(w / s_wc.reshape(shape)).astype(np.int64)
    bias_f = fl.bias
    if bc is not None:
        bias_f = bias_correction(fl, w_q * s_wc.reshape(shape), *bc)
    s_acc = tin.scale * s_wc
    # A threshold compares the integer accumulator with 0: flooring the bias makes that
    # the float decision ``Σ + b/s_acc >= 0`` exactly, for the same integer Σ.
    b_q = (np.floor(bias_f / s_acc) if sign else _round(bias_f / s_acc)).astype(np.int64)
    b_q = b_q - tin.zero_point * w_q.reshape(cout, -1).sum(axis=1)
    blo, bhi = int_range(32)
    clipped = int(((b_q < blo) | (b_q > bhi)).sum())
    b_q = np.clip(b_q, blo, bhi)
    if sign:
        m, n, mbits = threshold["m"], threshold["n"], threshold["mbits"]
    else:
        m, n, mbits = _multiplier(scheme, tin.scale * s_w / space.scale, fl)
    info.update(_weight_analysis(w, w_q, s_wc, fmt), bias_clipped=clipped)
    attrs["w_scale"] = [float(v) for v in s_w]
    if clipped:
        attrs["bias_clipped"] = clipped
    return QLayer(op=fl.op, weight=w_q, bias=b_q, m=m, n=n, mbits=mbits, wbits=fmt.wbits, wformat=fmt.name,
                  **extra, **common), info


def _weight_analysis(w: np.ndarray, w_q: np.ndarray, s_c: np.ndarray, fmt: WeightFormat) -> dict:
    """The fixed-point view of one weight tensor (``hwflow eval --analysis``)."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    s = s_c.reshape(shape)
    deq = w_q * s
    a = np.abs(w[w != 0])
    lo, hi = int(fmt.levels[0]), int(fmt.levels[-1])
    v = w / s
    return {
        "wbits": fmt.wbits,
        "wformat": fmt.name,
        "w_log2_range": (float(np.log2(a.min())) if a.size else 0.0, float(np.log2(a.max())) if a.size else 0.0),
        "scale_log2": (float(np.log2(s_c.min())), float(np.log2(s_c.max()))),
        "pct_below_precision": float(100.0 * ((w_q == 0) & (w != 0)).sum() / max(w.size, 1)),
        "pct_clipped": float(100.0 * ((v > hi + 0.5) | (v < lo - 0.5)).sum() / max(w.size, 1)),
        "max_abs_error": float(np.abs(deq - w).max()),
    }
