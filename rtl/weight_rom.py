"""Weight ROM: one initialised ``Memory`` holding every MAC layer's weights.

Word ``i`` holds ``pe x simd`` signed weights (``pe`` rows of ``simd``), in the order the
controller reads them (see :func:`hwflow.schedule.memory.weight_words`); layers follow each
other, the descriptor gives each layer's base. A layer stored narrower than the lanes packs
``2**wlr`` of its words into one (:meth:`hwflow.schedule.lower.RomImages.narrow_lr`; the
accelerator unpacks them), so to this block every word is ``pe x simd`` lanes alike. The weights are initialisation data, not
logic: in a BUILD a ``$readmemh`` file beside the Verilog (one hex word a line), else one
Verilog line per word. Synchronous read: infers block RAM. Latency 1 (``data``).

``q`` is ``data`` one cycle later (loads while ``en``): the datapath's read data register
(:data:`~hwflow.schedule.program.READ_DATA_REGS`). As the activation RAM's, the Verilog
module may build the ROM from banks (``banks``, :func:`hwflow.schedule.estimate.rom_banks`),
one per address slice of the block RAM, each with its own ``q`` register before the bank
multiplexer, so that a block's clock-to-out and the multiplexer are not one path; each bank
then reads its own ``$readmemh`` file (:meth:`WeightRom.hex_files`). The banks may hold only
some of the word's varying bit columns (``cols``: those that fill their blocks), the rest
then in one memory of the whole depth beside them, with no multiplexer, and the constant
columns constants (as Yosys would make them).
"""

from __future__ import annotations

import functools
import operator

import numpy as np
from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..quant.arith import int_range
from ..schedule.estimate import check_banks, memory_style
from ..sim.beats import pack
from ._banks import bank_mux
from ..schedule.widths import addr_bits

__all__ = ["WeightRom", "pack_words"]

_INIT_CHUNK = 64  # ROM words per Verilog ``initial`` block


def _columns(words: list[int], cols: list[int]) -> list[int]:
    """Each word's bits ``cols`` (positions), bit ``cols[i]`` as bit ``i``."""
    if cols == list(range(len(cols))):
        return [w & ((1 << len(cols)) - 1) for w in words]
    return [sum((w >> b & 1) << i for i, b in enumerate(cols)) for w in words]


def _hex(words: list[int], bits: int) -> str:
    digits = (bits + 3) // 4
    return "".join(f"{w:0{digits}x}\n" for w in words)


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
    banks : tuple of int, optional
        The Verilog module's bank depths: ``(words,)`` (the default) or ``(d, ..., d, rest)``
        with ``d`` a power of two, ``0 < rest <= d``.
    cols : int, optional
        How many of the words' varying bit columns the banks hold, the lowest ones (default:
        all); the others are one memory beside the banks
        (:class:`~hwflow.schedule.estimate.RomBanks`).
    """

    def __init__(self, image, bits: int, *, verilog_module: str | None = None,
                 banks: tuple[int, ...] | None = None, cols: int | None = None):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] < 1:
            raise ValueError(f"image must be (words, pe, simd), not shape {image.shape!r}")
        self._words = pack_words(image, bits)
        self._pe, self._simd, self._bits = int(image.shape[1]), int(image.shape[2]), bits
        self._module = verilog_module
        self._banks = check_banks(banks, len(self._words))
        width = self._pe * self._simd * bits
        diff = functools.reduce(operator.or_, (w ^ self._words[0] for w in self._words))
        varying = [b for b in range(width) if diff >> b & 1]
        if cols is not None and not (0 < cols <= len(varying) and len(self._banks) > 1):
            raise ValueError(f"cols must be 1 to the {len(varying)} varying columns, with banks, not {cols!r}")
        # The bit columns of the banks and of the memory beside them (none: the whole word banked).
        self._parts = ((list(range(width)), []) if cols is None or cols == len(varying)
                       else (varying[:cols], varying[cols:]))
        aw = addr_bits(len(self._words))
        super().__init__({
            "addr": In(aw),
            "en": In(1, init=1),
            "data": Out(self._pe * self._simd * bits),
            "q": Out(self._pe * self._simd * bits),
        })

    @property
    def words(self) -> list[int]:
        """The packed ROM words."""
        return self._words

    @property
    def latency(self) -> int:
        return 1

    def hex(self, lo: int = 0, hi: int | None = None) -> str:
        """The contents (words ``lo`` to ``hi``, default all) as ``$readmemh`` reads them: one
        word a line, in hex, the first word first."""
        return _hex(self._words[lo:hi], self._pe * self._simd * self._bits)

    @functools.cached_property
    def _part_words(self) -> tuple[list[int], list[int]]:
        """The words' bits of the banks and of the memory beside them (:attr:`_parts`)."""
        banked, rest = self._parts
        return _columns(self._words, banked), _columns(self._words, rest)

    def hex_files(self, name: str) -> dict[str, str]:
        """``{file: contents}`` of the ``$readmemh`` files :meth:`verilog` reads given
        ``name``: ``name.hex`` for the whole ROM, or ``name_J.hex`` for bank ``J`` (and
        ``name_rest.hex`` for the columns beside the banks)."""
        if len(self._banks) == 1:
            return {f"{name}.hex": self.hex()}
        (banked, rest), (words, rest_words) = self._parts, self._part_words
        starts = np.cumsum((0,) + self._banks)
        files = {f"{name}_{j}.hex": _hex(words[starts[j]:starts[j + 1]], len(banked))
                 for j in range(len(self._banks))}
        if rest:
            files[f"{name}_rest.hex"] = _hex(rest_words, len(rest))
        return files

    def verilog(self, init: str | None = None) -> str:
        """The ROM as a Verilog module named ``verilog_module`` (synchronous read: block RAM).

        With ``init`` the contents are read by ``$readmemh`` from the files
        :meth:`hex_files` names for it, paths relative to where the simulator runs (Yosys
        also looks beside the Verilog file); else they are written inline, one line per word.
        """
        width, depth = self._pe * self._simd * self._bits, len(self._words)
        aw = self.addr.shape().width
        if init is not None and (not init or any(c in init for c in '"\\/')):
            raise ValueError(f"init must be a plain file name stem, not {init!r}")
        files = list(self.hex_files(init)) if init is not None else None
        # Placed as the estimate assumes (Yosys built a wide ROM from LUTs when left alone).
        style = f'  (* ram_style = "{memory_style(depth, width)}" *)\n'

        def memory(name: str, words: list[int], bits: int, file: str | None) -> str:
            if file is not None:
                body = f'  initial $readmemh("{file}", {name});\n'
            else:
                digits = (bits + 3) // 4
                lines = [f"    {name}[{i}] = {bits}'h{w:0{digits}x};" for i, w in enumerate(words)]
                # Many short initial blocks: Yosys reads one huge block in time quadratic in its
                # size (YosysHQ/yosys#4601); one long constant instead would break Icarus.
                body = "".join("  initial begin\n" + "\n".join(lines[i:i + _INIT_CHUNK]) + "\n  end\n"
                               for i in range(0, len(words), _INIT_CHUNK))
            return f"{style}  reg [{bits - 1}:0] {name} [0:{len(words) - 1}];\n{body}"

        zero = f" = {width}'h0" if len(self._banks) == 1 else ""  # registers, or the banks' multiplexers
        head = (f"module {self._module}(clk, en, addr, data, q);\n"
                f"  input clk;\n  input en;\n  input [{aw - 1}:0] addr;\n"
                f"  output reg [{width - 1}:0] data{zero};\n  output reg [{width - 1}:0] q{zero};\n")
        if len(self._banks) == 1:
            return (head + memory("mem", self._words, width, files and files[0])
                    + "  always @(posedge clk) if (en) begin\n    data <= mem[addr];\n    q <= data;\n  end\n"
                    "endmodule\n")
        banked, rest = self._parts
        n, k = len(self._banks), self._banks[0].bit_length() - 1  # address bits [aw-1:k] pick the bank
        bw, (words, rest_words) = len(banked), self._part_words
        text = head
        for j, d in enumerate(self._banks):
            hb = max(1, (d - 1).bit_length())
            text += memory(f"mem_{j}", words[j << k:(j << k) + d], bw, files and files[j])
            text += (f"  reg [{bw - 1}:0] rd_{j} = {bw}'h0, q_{j} = {bw}'h0;\n"
                     f"  always @(posedge clk) if (en) begin\n    rd_{j} <= mem_{j}[addr[{hb - 1}:0]];\n"
                     f"    q_{j} <= rd_{j};\n  end\n")
        text += (f"  reg [{aw - k - 1}:0] sel = 0, sel_q = 0;\n"
                 f"  always @(posedge clk) if (en) begin\n    sel <= addr[{aw - 1}:{k}];\n    sel_q <= sel;\n  end\n")
        if not rest:
            return text + bank_mux(n, ("data", "sel", "rd_"), ("q", "sel_q", "q_")) + "endmodule\n"
        rw = len(rest)
        text += (memory("mem_rest", rest_words, rw, files and files[-1])
                 + f"  reg [{rw - 1}:0] rd_rest = {rw}'h0, q_rest = {rw}'h0;\n"
                 "  always @(posedge clk) if (en) begin\n    rd_rest <= mem_rest[addr];\n    q_rest <= rd_rest;\n"
                 f"  end\n  reg [{bw - 1}:0] data_b, q_b;\n"
                 + bank_mux(n, ("data_b", "sel", "rd_"), ("q_b", "sel_q", "q_")))
        where = {b: (0, i) for i, b in enumerate(banked)} | {b: (1, i) for i, b in enumerate(rest)}

        def word(regs: tuple[str, str]) -> str:  # the bits, highest first: a column's register, else its constant
            return ", ".join(f"{regs[where[b][0]]}[{where[b][1]}]" if b in where
                             else f"1'b{self._words[0] >> b & 1}" for b in reversed(range(width)))
        return (text + f"  always @(*) begin\n    data = {{{word(('data_b', 'rd_rest'))}}};\n"
                f"    q = {{{word(('q_b', 'q_rest'))}}};\n  end\nendmodule\n")

    def elaborate(self, platform):
        m = Module()
        if self._module is not None:
            m.submodules.rom = Instance(self._module, i_clk=ClockSignal(), i_en=self.en, i_addr=self.addr,
                                         o_data=self.data, o_q=self.q)
            return m
        width = self._pe * self._simd * self._bits
        m.submodules.mem = mem = memory.Memory(shape=unsigned(width), depth=len(self._words), init=self._words,
                                               attrs={"ram_style": memory_style(len(self._words), width)})
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.en), self.data.eq(rd.data)]
        q = Signal(width, reset_less=True)  # as the Verilog module's (no reset)
        with m.If(self.en):
            m.d.sync += q.eq(rd.data)
        m.d.comb += self.q.eq(q)
        return m
