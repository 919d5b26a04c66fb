"""Weight ROM: one initialised ``Memory`` holding every MAC layer's weights.

Word ``i`` holds ``pe x simd`` signed weights (``pe`` rows of ``simd``), in the order the
controller reads them (see :func:`hwflow.schedule.memory.weight_words`); layers follow each
other, the descriptor gives each layer's base. A layer stored narrower than the lanes packs
``2**wlr`` of its words into one (:meth:`hwflow.schedule.lower.RomImages.narrow_lr`; the
accelerator unpacks them), so to this block every word is ``pe x simd`` lanes alike. The weights are initialisation data, not
logic: in a BUILD a ``$readmemh`` file beside the Verilog (one hex word a line), else one
Verilog line per word. Synchronous read: infers block RAM. Latency 1.
"""

from __future__ import annotations

import numpy as np
from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..quant.arith import int_range
from ..schedule.estimate import memory_style
from ..sim.beats import pack
from ..schedule.widths import addr_bits

__all__ = ["WeightRom", "pack_words"]

_INIT_CHUNK = 64  # ROM words per Verilog ``initial`` block


def pack_words(image: np.ndarray, bits: int) -> list[int]:
    """Pack ``(words, ...)`` signed integers into one unsigned int per word, element 0 lowest
    (as the streams' beats are packed: :func:`hwflow.sim.beats.pack`)."""
    image = np.asarray(image, dtype=np.int64)
    flat = image.reshape(image.shape[0], -1)
    lo, hi = int_range(bits)
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"ROM values outside signed {bits} bits: [{flat.min()!r}, {flat.max()!r}]")
    return pack(flat, np.arange(flat.size).reshape(flat.shape), bits)


class WeightRom(wiring.Component):
    """``(words, pe, simd)`` weight image as a synchronous ROM.

    ``data`` is a packed vector: weight ``(p, s)`` is lane ``p*simd + s`` of ``bits``. While
``en`` is low ``data`` holds (the accelerator's stall).

    Parameters
    ----------
    image : numpy.ndarray
        ``(words, pe, simd)`` signed weights.
    bits : int
        Signed weight width.
    verilog_module : str, optional
        Instead of an Amaranth memory, instantiate the Verilog module of this name, which
        the caller emits with :meth:`verilog` (used by ``to_verilog``: Amaranth turns every
        bit of a memory's contents into a netlist constant, which takes seconds for a large
        ROM, while the text takes milliseconds). Simulation in Amaranth uses the memory.
    """

    def __init__(self, image, bits: int, *, verilog_module: str | None = None):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] < 1:
            raise ValueError(f"image must be (words, pe, simd), not shape {image.shape!r}")
        self._words = pack_words(image, bits)
        self._pe, self._simd, self._bits = int(image.shape[1]), int(image.shape[2]), bits
        self._module = verilog_module
        aw = addr_bits(len(self._words))
        super().__init__({
            "addr": In(aw),
            "en": In(1, init=1),
            "data": Out(self._pe * self._simd * bits),
        })

    @property
    def words(self) -> list[int]:
        """The packed ROM words."""
        return self._words

    @property
    def latency(self) -> int:
        return 1

    def hex(self) -> str:
        """The contents as ``$readmemh`` reads them: one word a line, in hex, word 0 first."""
        digits = (self._pe * self._simd * self._bits + 3) // 4
        return "".join(f"{w:0{digits}x}\n" for w in self._words)

    def verilog(self, init_file: str | None = None) -> str:
        """The ROM as a Verilog module named ``verilog_module`` (synchronous read: block RAM).

        With ``init_file`` the contents are read from that file (:meth:`hex`) by
        ``$readmemh``, a path relative to where the simulator runs (Yosys also looks beside
        the Verilog file); else they are written inline, one line per word.
        """
        width, depth = self._pe * self._simd * self._bits, len(self._words)
        aw, digits = self.addr.shape().width, (width + 3) // 4
        if init_file is not None:
            if not init_file or '"' in init_file or "\\" in init_file:
                raise ValueError(f"init_file must be a plain file name, not {init_file!r}")
            init = f'  initial $readmemh("{init_file}", mem);\n'
        else:
            lines = [f"    mem[{i}] = {width}'h{w:0{digits}x};" for i, w in enumerate(self._words)]
            # Many short initial blocks: Yosys reads one huge block in time quadratic in its
            # size (YosysHQ/yosys#4601); one long constant instead would break Icarus.
            init = "".join("  initial begin\n" + "\n".join(lines[i:i + _INIT_CHUNK]) + "\n  end\n"
                           for i in range(0, depth, _INIT_CHUNK))
        # Placed as the estimate assumes (Yosys built a wide ROM from LUTs when left alone).
        style = f'  (* ram_style = "{memory_style(depth, width)}" *)\n'
        return (
            f"module {self._module}(clk, en, addr, data);\n"
            f"  input clk;\n  input en;\n  input [{aw - 1}:0] addr;\n  output reg [{width - 1}:0] data = {width}'h0;\n"
            f"{style}"
            f"  reg [{width - 1}:0] mem [0:{depth - 1}];\n"
            f"{init}"
            f"  always @(posedge clk) if (en) data <= mem[addr];\n"
            f"endmodule\n"
        )

    def elaborate(self, platform):
        m = Module()
        if self._module is not None:
            m.submodules.rom = Instance(self._module, i_clk=ClockSignal(), i_en=self.en, i_addr=self.addr,
                                         o_data=self.data)
            return m
        width = self._pe * self._simd * self._bits
        m.submodules.mem = mem = memory.Memory(shape=unsigned(width), depth=len(self._words), init=self._words,
                                               attrs={"ram_style": memory_style(len(self._words), width)})
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.en), self.data.eq(rd.data)]
        return m
