"""The real accelerator behind the narrow (lane-serial) I/O wrapper, in Icarus Verilog.

The UP5K build's synthesis top is ``<top>_io``: the same core with byte-serial streams.
This drives it code by code, in the order ``hwflow.sim.beats`` packs words, and checks
every output code against the integer reference.
"""

import numpy as np
import pytest

from _support.narrow_tb import run_narrow_wrapper
from hwflow.build import load_build
from hwflow.flow import compile_model

MLP = "examples/models/digits_mlp.onnx"
CALIB = "examples/models/digits_mlp_calib.npz"

@pytest.mark.sim
@pytest.mark.tool("iverilog")
def test_accelerator_through_the_lane_serial_wrapper(tmp_path):
    compile_model(MLP, "fpga-tiny", tmp_path / "b", calib_path=CALIB, vectors=3)
    build = load_build(tmp_path / "b")
    assert build.manifest["handoff"]["wrapped"], "the UP5K build needs the narrow wrapper"
    got, _ = run_narrow_wrapper(tmp_path / "b")
    want = build.expected()
    assert len(got) == len(want) == 3
    for v in range(len(want)):
        assert got[v] == list(np.asarray(want[v]).reshape(-1))
