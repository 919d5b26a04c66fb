"""hwflow report: every example's report is produced, has every section, and every image is a valid PNG."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwflow.build import load_build
from hwflow.cli import main
from hwflow.errors import BuildError
from hwflow.flow import compile_model
from hwflow.quant import QuantConfig
from hwflow.report import SECTIONS, write_report
from hwflow.report._context import load_context
from hwflow.report.gantt import phases
from hwflow.report.memmap import memories
from hwflow.report.weights import weight_stats

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
EXAMPLES = ["digits_cnn", "digits_mlp", "digits784_tanh_mlp"]
PNG = b"\x89PNG\r\n\x1a\n"
_IMG = re.compile(r'<img[^>]*data-name="([^"]+)"[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Each example compiled once (with its calibration data) for the whole module."""
    root = tmp_path_factory.mktemp("report_builds")
    out = {}
    for name in EXAMPLES:
        # nearest rounding: GPTQ costs seconds on the 784-input MLP and changes nothing the report reads
        compile_model(MODELS / f"{name}.onnx", "fpga-small", root / name, QuantConfig(rounding="nearest"),
                      calib_path=MODELS / f"{name}_calib.npz", vectors=4)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def reports(builds, tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    return {name: write_report(b, root / f"{name}.html", data=MODELS / f"{name}_test.npz", quiet=True)
            for name, b in builds.items()}


def _images(page: str) -> list[tuple[str, bytes]]:
    return [(name, base64.b64decode(data)) for name, data in _IMG.findall(page)]


@pytest.mark.parametrize("name", EXAMPLES)
def test_report_has_every_section(reports, name):
    page = reports[name].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for sid in SECTIONS:
        m = re.search(rf'<section id="{sid}">\s*<h2>([^<]+)</h2>', page)
        assert m, f"section {sid!r} missing"
        assert f'href="#{sid}"' in page
    # self-contained: no external references
    assert not re.search(r'(src|href)="(?!data:|#)', page)


@pytest.mark.parametrize("name", EXAMPLES)
def test_report_images_are_valid_pngs(reports, builds, name):
    from PIL import Image
    from matplotlib.image import imread

    page = reports[name].read_text(encoding="utf-8")
    imgs = _images(page)
    assert len(imgs) == page.count("<img"), "every <img> must be an embedded base64 PNG"
    names = {n for n, _ in imgs}
    qg = load_context(builds[name]).qgraph
    weighted = [l.name for l in qg.layers if l.weight is not None]
    # one weight histogram per weighted layer, and the fixed figures
    assert {f"weights_{l}" for l in weighted} <= names
    assert {"errors_sqnr", "errors_hist", "accuracy", "schedule_gantt", "memory_map", "resources"} <= names
    for n, raw in imgs:
        assert raw[:8] == PNG, n
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
        arr = imread(io.BytesIO(raw), format="png")
        assert arr.ndim == 3 and arr.shape[0] > 100 and arr.shape[1] > 300, (n, arr.shape)
        assert arr[..., :3].std() > 0.01, f"{n} is a blank image"


def test_accuracy_section_matches_eval(reports, builds):
    """The report's accuracy equals the integer reference's on the test data."""
    from hwflow.quant.evaluate import evaluate

    ctx = load_context(builds["digits_cnn"], data=MODELS / "digits_cnn_test.npz")
    x, y = ctx.data
    res = evaluate(ctx.graph, ctx.qgraph, x, y)
    page = reports["digits_cnn"].read_text(encoding="utf-8")
    sec = page[page.index('<section id="accuracy">'):page.index('<section id="schedule">')]
    assert f"<td>{100 * res['quant_accuracy']:.2f}</td>" in sec
    assert f"<td>{100 * res['float_accuracy']:.2f}</td>" in sec
    assert f"<td>{100 * res['agreement']:.2f}</td>" in sec
    assert res["quant_accuracy"] > 0.9


def test_weight_stats_agree_with_quantizer(builds):
    """Share beyond range equals the quantizer's own analysis; SQNR from the codes is finite."""
    ctx = load_context(builds["digits_cnn"])
    analysis = ctx.qgraph.attrs["layers"]
    for layer in ctx.qgraph.layers:
        if layer.weight is None:
            continue
        st = weight_stats(layer, ctx.float_weights[layer.name])
        assert st["beyond"] * 100 == pytest.approx(analysis[layer.name]["pct_clipped"], abs=1e-9)
        assert st["max_abs_error"] == pytest.approx(analysis[layer.name]["max_abs_error"], rel=1e-9)
        assert 20 < st["sqnr_db"] < 80


def test_gantt_and_memory_add_up(builds):
    ctx = load_context(builds["digits_cnn"])
    ph = phases(ctx.schedule)
    assert sum(p["cycles"] for p in ph) == ctx.manifest["cycles"]
    assert {p["name"]: p["cycles"] for p in ph if p["layer"]} == ctx.manifest["layer_cycles"]
    for p in ph:
        assert sum(p["parts"].values()) == p["cycles"]
    mems = memories(ctx)
    assert sum(m["bits"] for m in mems) == ctx.manifest["memory"]["total_bits"]
    assert sum(m["blocks"] for m in mems) == ctx.manifest["estimate"]["bram_blocks"]


def test_synth_and_simulation_results_are_shown(builds, tmp_path):
    """With a synth record (captured from a real hwflow synth run of this CNN) and a
    simulation record, the resources section compares and shows Fmax; simulation shows the verdict."""
    b = tmp_path / "cnn"
    shutil.copytree(builds["digits_cnn"], b)
    build = load_build(b)
    build.record("synth", json.loads((Path(__file__).parent / "data" / "synth_digits_cnn.json").read_text()))
    sim = {"simulator": "verilator", "passed": True, "vectors": 8, "mismatches": 0, "cycles": 2196,
           "predicted_cycles": 2196, "cycles_per_vector": [2196] * 8, "cycles_per_second": 1e6,
           "wall_time": 0.1, "first_mismatch": "", "inputs": "the BUILD's 8 test vectors"}
    build.record("simulation", sim)
    page = write_report(b, quiet=True).read_text(encoding="utf-8")
    res = page[page.index('<section id="resources">'):page.index('<section id="simulation">')]
    assert "<td>2,213</td>" in res and "Fmax 61.9 MHz" in res and "MISSED" in res
    assert "Not synthesized yet" not in res
    simsec = page[page.index('<section id="simulation">'):]
    assert "PASS (bit-exact and cycle-exact)" in simsec and "verilator" in simsec
    assert "the BUILD&#x27;s 8 test vectors" in simsec  # the record says what was run


def test_edited_or_foreign_result_record_is_rejected(builds, tmp_path, capsys):
    """Writing a record leaves the BUILD's seal intact; editing one, or copying one from
    another BUILD, is detected when the report reads it (one line, exit 2)."""
    b = tmp_path / "mlp"
    shutil.copytree(builds["digits_mlp"], b)
    build = load_build(b)
    sim = {"simulator": "icarus", "passed": True, "vectors": 4, "mismatches": 0}
    build.record("simulation", sim)
    assert load_build(b).result("simulation") == sim  # the BUILD still loads: its seal holds
    doc = json.loads((b / "simulation.json").read_text())
    doc["passed"] = False
    (b / "simulation.json").write_text(json.dumps(doc))
    assert main(["report", str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "simulation.json" in err and "was modified after it was written" in err
    assert "re-run hwflow simulate" in err
    other = tmp_path / "cnn"
    shutil.copytree(builds["digits_cnn"], other)
    load_build(other).record("simulation", sim)
    shutil.copy(other / "simulation.json", b / "simulation.json")
    with pytest.raises(BuildError, match="is the result of another build"):
        write_report(b, quiet=True)
    (b / "simulation.json").write_text(json.dumps(sim))  # no seal
    with pytest.raises(BuildError, match="malformed or unsealed"):
        load_build(b).result("simulation")


@pytest.mark.sim
def test_report_simulate_amaranth(builds, tmp_path, monkeypatch):
    """--simulate runs the simulation when the BUILD has no result of that simulator,
    records it, and a second report reads the record instead of simulating again."""
    b = tmp_path / "mlp"
    shutil.copytree(builds["digits_mlp"], b)
    page = write_report(b, simulate="amaranth", quiet=True).read_text(encoding="utf-8")
    simsec = page[page.index('<section id="simulation">'):]
    assert "PASS (bit-exact and cycle-exact)" in simsec
    cycles = json.loads((b / "manifest.json").read_text())["cycles"]
    assert f"<td>{cycles}</td>" in simsec
    assert load_build(b).result("simulation")["simulator"] == "amaranth"

    import hwflow.sim.build_runner as runner

    def no_simulation(*args, **kwargs):
        raise AssertionError("the report simulated although a result is recorded")

    monkeypatch.setattr(runner, "simulate", no_simulation)
    page = write_report(b, simulate="amaranth", quiet=True).read_text(encoding="utf-8")
    assert "PASS (bit-exact and cycle-exact)" in page[page.index('<section id="simulation">'):]


def test_report_from_another_directory_has_every_section(tmp_path, monkeypatch):
    """The BUILD keeps its model: compiled from a relative path, then read from another
    directory after the source model is gone, the report still has every float section."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(MODELS / "digits_mlp.onnx", src / "m.onnx")
    monkeypatch.chdir(src)
    compile_model("m.onnx", "fpga-small", "out", QuantConfig(rounding="nearest"), vectors=2)
    (src / "m.onnx").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rel = Path("..") / "src" / "out"
    page = write_report(rel, quiet=True).read_text(encoding="utf-8")
    for name in ("weights_fc0_matmul", "errors_sqnr", "errors_hist"):
        assert f'data-name="{name}"' in page, name
    assert "No test data given" in page  # accuracy needs --data; nothing else is missing
    assert main(["report", str(rel), "-o", "r.html", "--data", str(MODELS / "digits_mlp_test.npz"), "-q"]) == 0
    page = (elsewhere / "r.html").read_text(encoding="utf-8")
    assert 'data-name="accuracy"' in page and "No test data given" not in page


def test_bad_build_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwflow: error: ") and err.count("\n") == 1 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "not an hwflow build" in err and err.count("\n") == 1


def test_edited_build_is_rejected(builds, tmp_path, capsys):
    b = tmp_path / "edited"
    shutil.copytree(builds["digits_mlp"], b)
    (b / "schedule.json").write_text("{}")
    assert main(["report", str(b)]) == 2
    err = capsys.readouterr().err
    assert "schedule.json" in err and "modified" in err and err.count("\n") == 1


def test_compile_report_flag(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["compile", str(MODELS / "digits_mlp.onnx"), "--calib", str(MODELS / "digits_mlp_calib.npz"),
                 "-o", str(out), "--report"]) in (0, None)
    captured = capsys.readouterr()
    assert f"report    {out / 'report.html'}" in captured.out
    assert captured.err == ""  # not a TTY: no progress
    page = (out / "report.html").read_text(encoding="utf-8")
    assert all(f'<section id="{s}">' in page for s in SECTIONS)


def test_report_errors_do_not_depend_on_float_noise(builds):
    """Per-layer error of the network input is pure rounding: at most half an LSB."""
    from hwflow.report._context import sample_inputs
    from hwflow.report.qerror import layer_errors

    ctx = load_context(builds["digits_cnn"], data=MODELS / "digits_cnn_test.npz")
    x, _ = sample_inputs(ctx, limit=64)
    errs = layer_errors(ctx, x)
    assert errs[0]["op"] == "input" and np.abs(errs[0]["lsb"]).max() <= 0.5 + 1e-6
    assert [e["layer"] for e in errs[1:]] == [l.name for l in ctx.qgraph.layers]
