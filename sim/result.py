"""The result of one simulation run, common to every simulator.

A run passes only when every output code equals the reference exactly, every vector's
cycle count (start sampled high → done high) equals the schedule's prediction plus that
vector's stall cycles exactly, as seen by both the core's own ``cycles`` port and the
testbench's count, and the testbench saw no violation of the stream interface rules.
A stall cycle is one in which a stream partner refused a beat (``in_ready`` high and
``in_valid`` low, or ``out_valid`` high and ``out_ready`` low; ``--stall``). A
design with a weight-load phase (weights in a memory the bitstream cannot initialise) is
loaded first, and its load must take exactly the predicted cycles too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SimResult", "compare_outputs"]


@dataclass
class SimResult:
    """Outcome of streaming test vectors through a simulated accelerator.

    Parameters
    ----------
    simulator : str
        ``"amaranth"``, ``"icarus"`` or ``"verilator"``.
    design : str
        What was simulated: ``"rtl"``, or ``"<family> netlist"`` after synthesis.
    vectors : int
        Vectors run.
    mismatches : int
        Vectors whose output differs from the reference in at least one code
        (or which produced too few/many codes).
    cycles : list of int
        Testbench-counted cycles start→done, one per vector.
    core_cycles : list of int
        The core's ``cycles`` port after each ``done``.
    predicted_cycles : int
        The schedule's prediction (``Program.cycles``).
    sim_cycles : int
        Clock cycles simulated in total (including idle/reset cycles).
    wall_time : float
        Seconds of wall time the simulation itself took (build excluded).
    cpu_time : float
        CPU seconds the simulating process spent in that time (a figure that does not
        depend on how busy the machine is).
    outputs : numpy.ndarray or None
        ``(vectors, output_size)`` codes the hardware produced.
    first_mismatch : str
        Human-readable description of the first wrong output, or ``""``.
    stall_cycles : list of int
        Stall cycles per vector (empty: none; see the module docstring).
    stall_probability : float
        The chance per cycle that a stream partner stalled.
    violations : list of str
        Interface-rule violations the testbench saw, each naming its vector and cycle
        (the first few; ``violation_count`` counts all).
    violation_count : int
    resets : int
        Inferences the run reset in mid-run (each followed by a full one).
    extra : dict
        More fields for the JSON document (a netlist run's ``synthesis_seconds``).
    load_cycles, predicted_load_cycles : int or None
        Measured and predicted cycles of the weight-load phase (first word offered to
        ``loaded`` high); ``None`` for a design without one.
    """

    simulator: str
    vectors: int
    mismatches: int
    cycles: list[int]
    core_cycles: list[int]
    predicted_cycles: int
    sim_cycles: int
    wall_time: float
    cpu_time: float = 0.0
    outputs: np.ndarray | None = None
    first_mismatch: str = ""
    stall_cycles: list[int] = field(default_factory=list)
    stall_probability: float = 0.0
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    resets: int = 0
    design: str = "rtl"
    extra: dict = field(default_factory=dict)
    load_cycles: int | None = None
    predicted_load_cycles: int | None = None

    def expected_cycles(self, v: int) -> int:
        """Vector ``v``'s exact cycle count: the prediction plus its stall cycles."""
        return self.predicted_cycles + (self.stall_cycles[v] if v < len(self.stall_cycles) else 0)

    @property
    def cycles_per_second(self) -> float:
        """Clock cycles simulated per second of wall time."""
        return self.sim_cycles / self.wall_time if self.wall_time > 0 else 0.0

    @property
    def cycles_per_cpu_second(self) -> float:
        """Clock cycles simulated per CPU second of the simulating process."""
        return self.sim_cycles / self.cpu_time if self.cpu_time > 0 else 0.0

    @property
    def cycles_exact(self) -> bool:
        """Every vector took exactly the predicted cycles plus its stall cycles, by both counts."""
        return (
            len(self.cycles) == self.vectors
            and len(self.core_cycles) == self.vectors
            and len(self.stall_cycles) in (0, self.vectors)
            and all(c == self.expected_cycles(v) for v, c in enumerate(self.cycles))
            and all(c == self.expected_cycles(v) for v, c in enumerate(self.core_cycles))
        )

    @property
    def load_exact(self) -> bool:
        """The weight load (if the design has one) took exactly the predicted cycles."""
        return self.load_cycles == self.predicted_load_cycles

    @property
    def passed(self) -> bool:
        """Bit-exact, cycle-exact (the weight load included) and no interface-rule violation."""
        return (self.vectors > 0 and self.mismatches == 0 and self.cycles_exact and self.load_exact
                and self.violation_count == 0)

    @property
    def cycles_summary(self) -> int | None:
        """The cycle count of every vector if they all agree, else the worst (largest)."""
        counts = self.cycles + self.core_cycles
        return max(counts) if counts else None

    def to_json(self) -> dict:
        """The ``hwflow simulate --json`` document."""
        return {
            "simulator": self.simulator,
            "design": self.design,
            "passed": self.passed,
            "vectors": self.vectors,
            "mismatches": self.mismatches,
            "cycles": self.cycles_summary,
            "predicted_cycles": self.predicted_cycles,
            "cycles_per_second": round(self.cycles_per_second, 1),
            "cycles_per_vector": list(self.cycles),
            "core_cycles_per_vector": list(self.core_cycles),
            "sim_cycles": self.sim_cycles,
            "wall_time": round(self.wall_time, 4),
            "cpu_time": round(self.cpu_time, 4),
            "cycles_per_cpu_second": round(self.cycles_per_cpu_second, 1),
            "first_mismatch": self.first_mismatch,
            **({"load_cycles": self.load_cycles, "predicted_load_cycles": self.predicted_load_cycles}
               if self.predicted_load_cycles is not None or self.load_cycles is not None else {}),
            "stall_probability": self.stall_probability,
            "stall_cycles": sum(self.stall_cycles),
            "stall_cycles_per_vector": list(self.stall_cycles),
            "violations": list(self.violations),
            "violation_count": self.violation_count,
            "resets": self.resets,
            **self.extra,
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        verdict = "PASS" if self.passed else "FAIL"
        what = self.simulator if self.design == "rtl" else f"{self.simulator} ({self.design})"
        lines = [
            f"{what}: {verdict}",
            f"  vectors run      {self.vectors}",
            f"  mismatches       {self.mismatches}",
            f"  cycles           {self._cycles_text()} (predicted {self.predicted_cycles}"
            + (f" + {self._stalls_text()} stall cycles)" if any(self.stall_cycles) else ")"),
            f"  simulation speed {self.cycles_per_second:,.0f} cycles/s "
            f"({self.sim_cycles:,} cycles in {self.wall_time:.2f} s; "
            f"{self.cycles_per_cpu_second:,.0f} per CPU second)",
        ]
        if self.resets:
            lines.append(f"  resets           {self.resets} in mid-inference, each followed by a full one")
        if self.predicted_load_cycles is not None or self.load_cycles is not None:
            lines.insert(4, f"  weight load      {self.load_cycles} cycles (predicted {self.predicted_load_cycles})")
        if self.first_mismatch:
            lines.append(f"  first mismatch   {self.first_mismatch}")
        miss = next((v for v, c in enumerate(self.cycles) if c != self.expected_cycles(v)), None)
        if miss is not None:
            lines.append(f"  first cycle miss vector {miss}: {self.cycles[miss]} cycles, expected "
                         f"{self.expected_cycles(miss)}")
        if self.violation_count:
            lines.append(f"  violations       {self.violation_count}; first: {self.violations[0]}")
        return "\n".join(lines)

    def _stalls_text(self) -> str:
        lo, hi = min(self.stall_cycles), max(self.stall_cycles)
        return str(lo) if lo == hi else f"{lo}..{hi}"

    def _cycles_text(self) -> str:
        counts = sorted(set(self.cycles))
        core = sorted(set(self.core_cycles))
        text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}..{counts[-1]}" if counts else "none"
        if core != counts:
            text += f", core counter says {core if len(core) > 1 else core[0] if core else 'none'}"
        return text


def compare_outputs(got: list[list[int]], expected: np.ndarray | None) -> tuple[int, str]:
    """Count vectors whose outputs differ from ``expected``; describe the first one.

    Parameters
    ----------
    got : list of list of int
        Codes per vector, as the hardware produced them.
    expected : numpy.ndarray or None
        ``(vectors, output_size)`` reference codes; ``None`` skips the comparison.
    """
    if expected is None:
        return 0, ""
    expected = np.asarray(expected).reshape(len(got), -1) if len(got) else np.asarray(expected)
    bad, first = 0, ""
    for v, (out, ref) in enumerate(zip(got, expected)):
        ref = [int(r) for r in ref]
        if list(out) == ref:
            continue
        bad += 1
        if not first:
            if len(out) != len(ref):
                first = f"vector {v}: {len(out)} output codes, expected {len(ref)}"
            else:
                i = next(i for i, (a, b) in enumerate(zip(out, ref)) if a != b)
                first = f"vector {v}, output {i}: got {out[i]}, expected {ref[i]}"
    return bad, first
