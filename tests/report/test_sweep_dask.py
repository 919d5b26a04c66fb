"""hwflow sweep --scheduler: the points run on a Dask cluster (a LocalCluster here) and give
the local run's rows; an unreachable or malformed scheduler is one line, exit 2, no hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwflow.cli import main
from hwflow.report import sweep
from hwflow.report.sweep import run_sweep

distributed = pytest.importorskip("distributed", reason="the Dask extra (pip install 'hwflow[dask]') is not installed")

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
MLP = MODELS / "digits_mlp.onnx"
GRID = dict(target="fpga-small", pe="2,4", simd="4", wbits="8,4", calib=MODELS / "digits_mlp_calib.npz",
            data=MODELS / "digits_mlp_test.npz", quiet=True)
#: Where each point ran and where its BUILD was written differ; everything else must not.
LOCAL_ONLY = ("worker_pid", "path")


def _rows(doc):
    return [{k: v for k, v in r.items() if k not in LOCAL_ONLY} for r in doc["rows"]]


@pytest.mark.slow
def test_dask_sweep_equals_the_local_run(tmp_path):
    local = run_sweep(MLP, out_dir=tmp_path / "local", jobs=2, **GRID)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_port=0) as cluster:
        remote = run_sweep(MLP, out_dir=tmp_path / "dask", scheduler=cluster.scheduler_address, **GRID)
    assert len(remote["rows"]) == 4 and not any(r.get("error") for r in remote["rows"])
    assert _rows(remote) == _rows(local)
    assert all(Path(r["path"]).parent == tmp_path / "dask" / "points" for r in remote["rows"])
    assert all((Path(r["path"]) / "manifest.json").is_file() for r in remote["rows"])


def test_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "DASK_CONNECT_TIMEOUT", 2)
    rc = main(["sweep", str(MLP), "--pe", "2", "--simd", "4", "--wbits", "8", "-o", str(tmp_path / "s"),
               "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s" in err[0]
    assert not (tmp_path / "s").exists()


def test_malformed_scheduler_address(tmp_path, capsys):
    rc = main(["sweep", str(MLP), "--pe", "2", "--simd", "4", "--wbits", "8", "-o", str(tmp_path / "s"),
               "--scheduler", "127.0.0.1:8786"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "tcp://HOST:PORT" in err[0], err
