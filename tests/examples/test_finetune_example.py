"""examples/finetune_resnet8.py end to end, small: fine-tune, compile, check the accuracy equality, simulate."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.tool("torch", "verilator")
def test_finetune_example_end_to_end(root, tmp_path):
    # the digits CNN: the ResNet-8's residual Adds do not pass the exact QONNX importer yet
    p = subprocess.run([sys.executable, str(root / "examples" / "finetune_resnet8.py"), "--model", "digits_cnn",
                        "--settings", "w2a4", "--epochs", "1", "--train-samples", "256", "--vectors", "1",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout + p.stderr
    row = p.stdout.splitlines()[1].split()
    assert row[0] == "w2a4" and row[3] == row[4] and row[-1] == "exact", p.stdout  # finetuned == BUILD; simulation
    assert "finetune == BUILD" in p.stdout
    assert (tmp_path / "digits_cnn_w2a4.onnx").exists() and (tmp_path / "w2a4" / "manifest.json").exists()


@pytest.mark.slow
@pytest.mark.tool("torch", "verilator")
def test_finetune_example_w1a1_sfc(root, tmp_path):
    """The SFC-shaped MLP at w1a1 (binary weights, sign activations): fine-tuned, compiled with
    binary layers and thresholds, equal to the BUILD's reference, and exact in Verilator."""
    p = subprocess.run([sys.executable, str(root / "examples" / "finetune_resnet8.py"), "--model", "digits784_sfc",
                        "--settings", "w1a1", "--epochs", "1", "--train-samples", "256", "--vectors", "1",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout + p.stderr
    row = p.stdout.splitlines()[1].split()
    assert row[0] == "w1a1" and row[3] == row[4] and row[-1] == "exact", p.stdout
    formats = [l["wformat"] for l in json.loads((tmp_path / "w1a1" / "quant.json").read_text())["layers"]
               if l.get("wbits")]
    assert formats == ["int", "binary", "binary", "int"], formats
