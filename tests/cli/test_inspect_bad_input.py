"""Every user mistake through ``hwflow inspect``: exit 2, one line on stderr, no traceback."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.cli import main


def _save(path, nodes, inputs, inits=(), opset=13):
    g = helper.make_graph(
        nodes,
        "bad",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def _x(*dims, name="x"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def _good(path):
    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    return _save(path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [_x(1, 16)], {"w": w})


def _cases(tmp_path):
    """name -> (path, regex the one stderr line must match)."""
    cases = {}
    cases["missing"] = (tmp_path / "missing.onnx", r"cannot read model file '.*missing.onnx': No such file")
    (tmp_path / "dangling.onnx").symlink_to(tmp_path / "gone.onnx")
    cases["dangling-link"] = (tmp_path / "dangling.onnx", r"cannot read model file '.*dangling.onnx'")
    (tmp_path / "adir").mkdir()
    cases["directory"] = (tmp_path / "adir", r"'.*adir' is a directory, not an ONNX model file")
    (tmp_path / "text.onnx").write_text("name,value\n1,2\n")
    cases["text"] = (tmp_path / "text.onnx", r"'.*text.onnx' is not an ONNX model or is truncated")
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(1).bytes(4096))
    cases["random-bytes"] = (tmp_path / "noise.onnx", r"'.*noise.onnx' is not an ONNX model")
    (tmp_path / "empty.onnx").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.onnx", r"'.*empty.onnx' is empty")
    raw = _good(tmp_path / "good.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = (tmp_path / "cut.onnx", r"'.*cut.onnx' is not an ONNX model or is truncated")
    cases["unsupported-op"] = (
        _save(tmp_path / "lrn.onnx", [helper.make_node("LRN", ["x"], ["y"], size=3, name="norm")], [_x(1, 4, 3, 3)]),
        r"lrn.onnx: node 'norm' uses op LRN, which hwflow does not support; supported: Conv, Gemm, .*ArgMax",
    )
    w = np.ones((4, 2), np.float32)
    w[0, 0] = np.nan
    cases["nan"] = (
        _save(tmp_path / "nan.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_x(1, 4)], {"w": w}),
        r"nan.onnx: initializer 'w' contains NaN",
    )
    cases["inf"] = (
        _save(tmp_path / "inf.onnx", [helper.make_node("Add", ["x", "b"], ["y"])], [_x(1, 4)], {"b": np.full(4, np.inf, np.float32)}),
        r"inf.onnx: initializer 'b' contains Inf",
    )
    cases["dynamic-dim"] = (
        _save(tmp_path / "dyn.onnx", [helper.make_node("Relu", ["x"], ["y"])], [_x("N", 3, "height", 8)]),
        r"dyn.onnx: graph input 'x' has dynamic dimension 'height' at axis 2",
    )
    cases["two-inputs"] = (
        _save(tmp_path / "two.onnx", [helper.make_node("Add", ["x", "z"], ["y"])], [_x(1, 4), _x(1, 4, name="z")]),
        r"two.onnx: the model has 2 graph inputs \['x', 'z'\]; hwflow needs exactly one",
    )
    onnx.save_model(onnx.load(_good(tmp_path / "ext.onnx")), tmp_path / "ext.onnx", save_as_external_data=True,
                    location="ext.data", size_threshold=0)  # fmt: skip
    (tmp_path / "ext.data").unlink()
    cases["missing-external-data"] = (tmp_path / "ext.onnx", r"'.*ext.onnx': cannot read its external weight data")
    return cases


CASES = [
    "missing", "dangling-link", "directory", "text", "random-bytes", "empty", "truncated",
    "unsupported-op", "nan", "inf", "dynamic-dim", "two-inputs", "missing-external-data",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("flags", [[], ["--json"], ["--raw"]])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case, flags):
    path, pattern = _cases(tmp_path)[case]
    assert main(["inspect", str(path), *flags]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hwflow: error: ")
    assert "Traceback" not in err
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_console_script_prints_one_line_and_no_traceback(tmp_path):
    path, _ = _cases(tmp_path)["truncated"]
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from hwflow.cli import main; sys.exit(main())", "inspect", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_good_model_exits_0(tmp_path, capsys):
    assert main(["inspect", str(_good(tmp_path / "good.onnx"))]) == 0
    assert "params" in capsys.readouterr().out
