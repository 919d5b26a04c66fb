"""The BUILD directory: the single record of one compile and of what was done with it since.

``hwflow compile`` (:mod:`hwflow.flow`) writes a BUILD atomically; this module reads it
back, checked, for everything that uses one (simulation, synthesis, the report, the
Python API), and records their results in it. It sits below all of them and imports
none of them.

Layout::

    manifest.json        what was built: format, top, target, ops, host tail, predicted
                         cycles, memory bits, resource estimate, input/output types, the
                         options (typed configs, see hwflow.config), the sha256 of every
                         file below, the result records it may hold, and its own sha256
    model.onnx           the model it was compiled from (a byte copy; external weights
                         embedded), so the BUILD stands alone wherever it is read from
    <top>.v              the generated Verilog (what Icarus/Verilator simulate)
    weights_load.hex     only when the weights are in a memory the bitstream cannot set
                         (iCE40 SPRAM): the image the weight-load port takes after reset,
                         one word a line in hex, word 0 first (manifest ``load``)
    schedule.json        Program.to_json(): loops, memory map, per-layer cycles
    quant.json           the QGraph: every tensor's type, every layer's integer parameters
                         (hwflow.quant.serialize's format plus a format tag)
    vectors/inputs.npy   test vectors: input codes (vectors, *input_shape[1:])
    vectors/expected.npy the integer reference's output codes for them
    vectors/stream.npz   in_map, out_map: the code each stream lane carries (hwflow.sim.beats)
    sim/run.py           standalone cocotb runner (cocotb_tools + numpy only)
    sim/tb_accelerator.py, sim/beats.py  the cocotb testbench it runs, and its packing
    handoff.json, synth.ys, files.f, <top>.core, constraints, README.md
                         the synthesis hand-off (device targets only)
    --- written later, not in the manifest's file checksums ---
    simulation.json      result record of the last ``hwflow simulate`` (hwflow.sim.run_build)
    synth.json           result record of the last ``hwflow synth`` (hwflow.synth.flow)
    synth/               synthesis tool outputs and logs
    sim_build/<sim>/     simulator build caches
    report.html          ``hwflow report``'s page

The seal
--------
Compile-time files are checked against the manifest's sha256 of each, and the manifest
against its own ``manifest_sha256`` (a checksum of the rest), so an edit by hand is
detected (:func:`load_build`). The manifest is never rewritten after compile: it lists
the *names* of the result records (``results``), and each record carries its own seal
(``{"build": manifest_sha256, "sha256": checksum of the rest}``). So writing a result
leaves the BUILD's seal intact, an edited record is detected when it is read
(:meth:`BuildDir.result`), and so is a record copied from another BUILD. A recompile
replaces the directory and with it every earlier result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._files import digest, dumps, jsonable, sha256_file, write_json
from .errors import BuildError

__all__ = ["FORMAT", "LOAD_FILE", "MANIFEST", "MODEL_FILE", "RESULTS", "HOST_TAIL_NOTE", "BuildDir", "load_build",
           "write_manifest", "qgraph_to_json", "qgraph_from_json"]

#: The manifest's format tag; a BUILD in another format must be compiled again.
FORMAT = "hwflow.build/2"
MANIFEST = "manifest.json"
#: The copy of the model inside the BUILD.
MODEL_FILE = "model.onnx"
#: The weight image for the weight-load port (BUILDs whose weights are loaded after reset).
LOAD_FILE = "weights_load.hex"
#: Result records a BUILD may hold: kind -> file (and the command that writes it).
RESULTS = {"simulation": "simulation.json", "synth": "synth.json"}
HOST_TAIL_NOTE = "the host computes these ops from the accelerator's output (Build.outputs)"
_QUANT_FORMAT = "hwflow.qgraph/1"


# ---- QGraph <-> JSON ---------------------------------------------------------------------

def qgraph_to_json(qg) -> dict:
    """The QGraph as the ``quant.json`` document: the quantizer's own serialization
    (:func:`hwflow.quant.serialize.qgraph_to_dict`) with a format tag. Integers are
    exact and scales round-trip exactly (``json`` writes floats with ``repr``)."""
    from .quant.serialize import qgraph_to_dict

    return {"format": _QUANT_FORMAT, **qgraph_to_dict(qg)}


def qgraph_from_json(doc: dict):
    """Rebuild the QGraph written by :func:`qgraph_to_json`.

    Raises
    ------
    ValueError, KeyError, TypeError
        If the document is malformed (callers turn this into BuildError).
    """
    from .quant.serialize import qgraph_from_dict

    if doc.get("format") != _QUANT_FORMAT:
        raise ValueError(f"unknown quant.json format {doc.get('format')!r}")
    return qgraph_from_dict(doc)


# ---- the manifest's seal -------------------------------------------------------------------

def _manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest without its own ``manifest_sha256``."""
    return digest({k: v for k, v in manifest.items() if k != "manifest_sha256"})


def write_manifest(path: str | Path, manifest: dict) -> dict:
    """Write ``manifest.json`` sealed with its own checksum; returns the sealed manifest
    (plain JSON values)."""
    manifest = jsonable(manifest)
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    write_json(Path(path), manifest)
    return manifest


# ---- reading a BUILD -------------------------------------------------------------------------

@dataclass
class BuildDir:
    """A BUILD directory checked by :func:`load_build` (see the module docstring).

    Parameters
    ----------
    path : Path
        The directory.
    manifest : dict
        Its ``manifest.json``.
    """

    path: Path
    manifest: dict

    @property
    def top(self) -> str:
        """The Verilog top module's name."""
        return self.manifest["top"]

    @property
    def verilog_path(self) -> Path:
        """The generated Verilog file."""
        return self.path / self.manifest["verilog"]

    @property
    def model_path(self) -> Path:
        """The BUILD's copy of the ONNX model it was compiled from."""
        return self.path / self.manifest["model_file"]

    @property
    def predicted_cycles(self) -> int:
        """Clock cycles from start to done of one inference, as the schedule predicts."""
        return int(self.manifest["cycles"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The network input's shape (batch 1 first)."""
        return tuple(self.manifest["input"]["shape"])

    def input_tensor(self):
        """The network input's integer type (:class:`~hwflow.quant.qgraph.QTensor`, from
        ``quant.json``: its rounding and narrow range too), shaped as the first layer reads it
        (:meth:`input_shape` is the user's array)."""
        qg = self.qgraph()
        return qg.tensors[qg.input]

    def inputs(self) -> np.ndarray:
        """The stored test vectors' input codes, ``(vectors, *input_shape[1:])``."""
        return np.load(self.path / "vectors" / "inputs.npy")

    def expected(self) -> np.ndarray:
        """The integer reference's output codes for :meth:`inputs`."""
        return np.load(self.path / "vectors" / "expected.npy")

    def stream_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(in_map, out_map)``: which code each stream lane carries (see :mod:`hwflow.sim.beats`)."""
        with np.load(self.path / "vectors" / "stream.npz") as f:
            return f["in_map"], f["out_map"]

    def qgraph(self):
        """The integer network, from ``quant.json``."""
        try:
            return qgraph_from_json(json.loads((self.path / "quant.json").read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise BuildError(f"{self.path / 'quant.json'} is malformed ({exc}); re-run hwflow compile") from None

    def target(self):
        """The target compiled for: its file as recorded, else (moved) the shipped one of its name."""
        from .targets import load_target

        try:
            return load_target(self.manifest.get("target_source") or self.manifest["target"])
        except Exception:  # noqa: BLE001 - a moved target file falls back to the name
            return load_target(self.manifest["target"])

    def program(self):
        """Re-run the scheduler on ``quant.json`` with the recorded target and schedule
        options, and check that the result equals ``schedule.json``.

        The Amaranth simulator needs the Program object (``schedule.json`` is a summary,
        not a loadable Program); scheduling is deterministic, so the check proves the
        rebuilt hardware is the one that was compiled.
        """
        from .schedule import schedule

        prog = schedule(self.qgraph(), self.target(), pe=self.manifest["pe"], simd=self.manifest["simd"],
                        fuse=self.manifest["options"]["schedule"]["fuse"])
        want = json.loads((self.path / "schedule.json").read_text())
        if json.loads(dumps(prog.to_json())) != want:
            raise BuildError(
                f"re-scheduling {self.path / 'quant.json'} does not reproduce schedule.json: this "
                f"hwflow ({__version__}) schedules differently from the one that compiled it "
                f"({self.manifest.get('hwflow_version')}); re-run hwflow compile"
            )
        return prog

    # ---- result records ------------------------------------------------------------------

    def _result_file(self, kind: str) -> Path:
        if kind not in self.manifest["results"]:
            raise ValueError(f"result kind must be one of {sorted(self.manifest['results'])}, not {kind!r}")
        return self.path / self.manifest["results"][kind]

    def record(self, kind: str, doc: dict) -> Path:
        """Write the result record ``kind`` (``"simulation"`` or ``"synth"``), sealed, atomically.

        Returns
        -------
        Path
            The record's file.
        """
        seal = {"build": self.manifest["manifest_sha256"], "sha256": digest(doc)}
        return write_json(self._result_file(kind), {**doc, "seal": seal}, indent=2)

    def result(self, kind: str) -> dict | None:
        """The result record ``kind`` without its seal, or None when there is none.

        Raises
        ------
        BuildError
            The record is malformed, was edited after it was written, or belongs to
            another BUILD; one line naming the command that writes it again.
        """
        f = self._result_file(kind)
        if not f.is_file():
            return None
        again = f"re-run hwflow {'simulate' if kind == 'simulation' else kind} (or delete it)"
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            seal = doc.pop("seal")
            build, sha = seal["build"], seal["sha256"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BuildError(f"{f.name} in build {str(self.path)!r} is malformed or unsealed "
                             f"({exc.__class__.__name__}); {again}") from None
        if sha != digest(doc):
            raise BuildError(f"{f.name} in build {str(self.path)!r} was modified after it was written "
                             f"(checksum differs); {again}")
        if build != self.manifest["manifest_sha256"]:
            raise BuildError(f"{f.name} in build {str(self.path)!r} is the result of another build "
                             f"(its seal names another manifest); {again}")
        return doc


_KEYS = ("format", "top", "verilog", "target", "files", "results")
_SIM_KEYS = ("cycles", "input", "output", "pe", "simd", "model_file", "options")
_SIM_FILES = ("quant.json", "schedule.json", "vectors/inputs.npy", "vectors/expected.npy", "vectors/stream.npz")


def load_build(path: str | Path | BuildDir, *, simulate: bool = True) -> BuildDir:
    """Open a BUILD directory and check that it is complete and unedited.

    Parameters
    ----------
    path : str, Path or BuildDir
        The directory (a BuildDir is returned as it is: it was checked when loaded).
    simulate : bool
        Also require what simulation and the report need (quant.json, schedule.json,
        vectors, the model); synthesis needs only the manifest and the Verilog.

    Returns
    -------
    BuildDir

    Raises
    ------
    BuildError
        Missing directory or manifest, another format, a missing file, or a file whose
        checksum differs from the manifest's (edited by hand); one line with what to do.
    """
    if isinstance(path, BuildDir):
        return path
    path = Path(path)
    if not path.is_dir():
        raise BuildError(f"build directory {str(path)!r} does not exist; run hwflow compile first")
    mfile = path / MANIFEST
    if not mfile.exists():
        raise BuildError(f"{str(path)!r} is not an hwflow build (no {MANIFEST}); run hwflow compile first")
    try:
        manifest: Any = json.loads(mfile.read_text())
        if manifest.get("format") != FORMAT:
            raise BuildError(f"build {str(path)!r} has format {manifest.get('format')!r}, this hwflow reads "
                             f"{FORMAT!r}; re-run hwflow compile")
        for key in _KEYS + (_SIM_KEYS if simulate else ()):
            manifest[key]  # noqa: B018 - presence check
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError(f"{mfile} is malformed ({exc.__class__.__name__}: {exc}); re-run hwflow compile") from None
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise BuildError(f"{MANIFEST} in build {str(path)!r} was modified after compile (checksum differs); "
                         "re-run hwflow compile")
    for rel, want in files.items():
        f = path / rel
        if not f.is_file():
            raise BuildError(f"build {str(path)!r} is incomplete: {rel} is missing; re-run hwflow compile")
        if sha256_file(f) != want:
            raise BuildError(f"{rel} in build {str(path)!r} was modified after compile (checksum differs); "
                             "re-run hwflow compile")
    need = (manifest["verilog"],) + ((*_SIM_FILES, manifest["model_file"]) if simulate else ())
    for rel in need:
        if rel not in files:
            raise BuildError(f"build {str(path)!r} is incomplete: the manifest lists no {rel}; re-run hwflow compile")
    return BuildDir(path, manifest)
