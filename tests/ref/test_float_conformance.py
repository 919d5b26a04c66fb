"""Float reference vs the onnx package's own backend test cases (rtol = atol = 1e-5).

Sources: ``onnx.backend.test.case.node.collect_testcases()`` (generated in memory,
with their expected outputs) and the shipped ``pytorch-converted`` and
``pytorch-operator`` folders (``model.onnx`` plus ``test_data_set_*/*.pb``). Every case
whose ops hwflow supports runs; the rest are skipped with a reason.

Run this file as a script to rewrite ``conformance_skips.txt`` (counts and the
skipped cases with their reasons)::

    python tests/ref/test_float_conformance.py
"""

from __future__ import annotations

import collections
import glob
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hwflow.errors import UnsupportedOpError
from hwflow.ir import from_onnx
from hwflow.ir.ops import OPS
from hwflow.ref.float import run_float_multi

pytestmark = pytest.mark.slow  # the whole ONNX node-test sweep; the quick loop has test_float_light/batch

RTOL = ATOL = 1e-5
DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
SKIPS_FILE = Path(__file__).with_name("conformance_skips.txt")
KNOWN_OPS = set(OPS)

# Inputs in these slots are parameters to hwflow (a model must give them as
# constants), so the harness bakes the case's data for them into initializers.
_PARAM_SLOTS = {
    "Reshape": (1,), "Clip": (1, 2), "Squeeze": (1,), "Unsqueeze": (1,),
    "ConstantOfShape": (0,), "Dropout": (1, 2),
}  # fmt: skip


def _onnxruntime(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


class Skip(Exception):
    """This case cannot run on hwflow (reason in the message)."""


def _prepare(model: onnx.ModelProto, inputs: list[np.ndarray]) -> tuple[onnx.ModelProto, dict]:
    """Pin the inputs' shapes to the data and bake parameter inputs into initializers."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    init = {t.name for t in g.initializer}
    real = [vi for vi in g.input if vi.name not in init]
    for vi in real:
        if not vi.type.HasField("tensor_type"):
            raise Skip(f"input {vi.name!r} is a {vi.type.WhichOneof('value')}, not a tensor")
    params = {n.input[i] for n in g.node for i in _PARAM_SLOTS.get(n.op_type, ()) if i < len(n.input) and n.input[i]}
    feeds, keep = {}, []
    for vi, x in zip(real, inputs):
        x = np.asarray(x)
        if vi.name in params:
            g.initializer.append(numpy_helper.from_array(x, vi.name))
            continue
        shape = vi.type.tensor_type.shape
        shape.Clear()
        for d in x.shape:
            shape.dim.add().dim_value = d
        feeds[vi.name] = x
        keep.append(vi)
    baked = [vi for vi in real if vi not in keep]
    for vi in baked:
        g.input.remove(vi)
    return model, feeds


def _array(x) -> np.ndarray:
    return numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x)


def _unsupported(model: onnx.ModelProto) -> str | None:
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx") and (n.op_type not in OPS or n.domain != OPS[n.op_type].domain):
            return f"op {n.domain}.{n.op_type}"
        if n.op_type not in KNOWN_OPS:
            return f"op {n.op_type}"
    return None


def run_case(model: onnx.ModelProto, data_sets: list) -> bool:
    """Run every data set of a case; raise Skip if hwflow cannot import it.

    Returns True if some output was checked against onnxruntime instead of the stored one.
    """
    used_ort = False
    for inputs, expected in data_sets:
        inputs, expected = [_array(x) for x in inputs], [_array(y) for y in expected]
        prepared, feeds = _prepare(model, inputs)
        for x in feeds.values():
            if x.dtype.kind not in "fiub":
                raise Skip(f"input dtype {x.dtype}")
        try:
            graph = from_onnx(prepared, strict=False)
        except UnsupportedOpError as exc:
            raise Skip(str(exc)) from None
        got = run_float_multi(graph, feeds)
        assert len(expected) == len(graph.outputs)
        for name, want in zip(graph.outputs, expected):
            want = np.asarray(want)
            out = got[name]
            assert out.shape == want.shape, f"{name}: shape {out.shape} != {want.shape}"
            assert out.dtype == want.dtype, f"{name}: dtype {out.dtype} != {want.dtype}"
            if not np.allclose(out, want, rtol=RTOL, atol=ATOL, equal_nan=True):
                # A few stored outputs were typed in with 4 digits (the case's own
                # tolerance is 1e-3): the contract is onnxruntime within 1e-5.
                want = _onnxruntime(prepared, feeds)[graph.outputs.index(name)]
                np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} (vs onnxruntime)")
                used_ort = True
    return used_ort


def _node_cases() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return collect_testcases()


def _folder_cases() -> list[tuple[str, onnx.ModelProto, list]]:
    cases = []
    for folder in ("pytorch-converted", "pytorch-operator"):
        for path in sorted(glob.glob(str(DATA / folder / "*" / "model.onnx"))):
            model = onnx.load(path)
            data_sets = []
            for ds in sorted(glob.glob(os.path.join(os.path.dirname(path), "test_data_set_*"))):
                ins = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "input_*.pb")), key=_index)]
                outs = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "output_*.pb")), key=_index)]
                data_sets.append((ins, outs))
            cases.append((f"{folder}/{Path(path).parent.name}", model, data_sets))
    return cases


def _index(path: str) -> int:
    return int(Path(path).stem.split("_")[-1])


def _read_pb(path: str) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(Path(path).read_bytes())
    return numpy_helper.to_array(t)


def classify() -> tuple[list[str], dict[str, str], dict[str, str], list[str]]:
    """Run every case: (passed, {name: skip reason}, {name: failure}, passed against onnxruntime)."""
    passed, skipped, failed, via_ort = [], {}, {}, []
    cases = [(c.name, c.model, c.data_sets) for c in _node_cases()] + _folder_cases()
    for name, model, data_sets in cases:
        reason = _unsupported(model)
        if reason:
            skipped[name] = reason
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if run_case(model, data_sets):
                    via_ort.append(name)
            passed.append(name)
        except Skip as exc:
            skipped[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported, and the test fails on it
            failed[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return passed, skipped, failed, via_ort


@pytest.fixture(scope="module")
def results():
    return classify()


def test_every_supported_case_matches(results):
    passed, skipped, failed, via_ort = results
    assert len(via_ort) <= 3, via_ort  # only the few cases with hand-rounded stored outputs
    print(f"\nconformance: {len(passed)} run and matched, {len(skipped)} skipped, {len(failed)} failed")
    assert not failed, "\n".join(f"{k}: {v}" for k, v in sorted(failed.items()))
    # the suite must really exercise hwflow's ops, not skip its way to green
    assert len(passed) >= 300
    for must in ("test_conv_with_strides_padding", "test_maxpool_2d_ceil", "test_averagepool_2d_pads_count_include_pad",
                 "test_gemm_all_attributes", "test_batchnorm_epsilon", "test_softmax_axis_0", "test_argmax_keepdims_example",
                 "pytorch-converted/test_Conv2d_depthwise", "pytorch-converted/test_BatchNorm2d_eval",
                 "pytorch-converted/test_Linear", "pytorch-converted/test_MaxPool2d", "pytorch-converted/test_AvgPool2d"):  # fmt: skip
        assert must in passed, f"{must}: {skipped.get(must, 'not run')}"


def test_skips_are_only_unsupported_ops_or_inputs(results):
    _, skipped, _, _ = results
    for name, reason in skipped.items():
        op = reason.split()[1] if reason.startswith("op ") else None
        if op is not None:
            assert op.split(".")[-1] not in KNOWN_OPS or op.startswith("ai.onnx.ml."), f"{name} skipped for a supported op: {reason}"


def write_listing(path: Path = SKIPS_FILE) -> tuple[int, int, int]:
    passed, skipped, failed, via_ort = classify()
    by_reason = collections.Counter(skipped.values())
    lines = [
        "# Float-reference conformance: onnx backend node cases + pytorch-converted + pytorch-operator",
        "# regenerate: python tests/ref/test_float_conformance.py",
        f"run (matched onnx expected outputs, rtol=atol={RTOL}): {len(passed)}",
        f"  of which matched onnxruntime (stored output rounded): {via_ort}",
        f"skipped: {len(skipped)}",
        f"failed: {len(failed)}",
        "",
        "## skip reasons (count)",
        *[f"{n:5d}  {r}" for r, n in by_reason.most_common()],
        "",
        "## skipped cases",
        *[f"{k}: {v}" for k, v in sorted(skipped.items())],
        "",
        "## failed cases",
        *[f"{k}: {v}" for k, v in sorted(failed.items())],
        "",
        "## cases run",
        *sorted(passed),
    ]
    path.write_text("\n".join(lines) + "\n")
    return len(passed), len(skipped), len(failed)


if __name__ == "__main__":
    print("run %d, skipped %d, failed %d" % write_listing())
