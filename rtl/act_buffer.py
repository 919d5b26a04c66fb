"""Activation RAM: simple dual port (one synchronous read port, one write port).

A word holds ``simd`` signed lanes of ``bits``; the write port has one enable per lane
(granularity ``bits``), so a single code can be written into its channel lane. Tensors
live in HWC order with channels padded to a multiple of ``simd`` (see
:mod:`hwflow.schedule.memory`). The read port has an enable: when it is low the data
output holds, which the output stream uses for back-pressure. ``en`` low holds both ports
(the accelerator's input stall: the Verilog module is outside Amaranth's
``EnableInserter``, so it takes the enable as the weight memories do). Latency 1.

The Verilog module may build the RAM from two banks, a power-of-two one and the rest
(``banks``, chosen by :func:`hwflow.schedule.estimate.act_banks` when that takes fewer
blocks: Yosys slices one deep RAM uniformly); the bank is the address's top bit, and a
registered bank select picks the read data.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..schedule.estimate import memory_style
from ..schedule.widths import addr_bits

__all__ = ["ActBuffer"]


class ActBuffer(wiring.Component):
    """``depth`` words of ``simd`` x ``bits``.

    Parameters
    ----------
    depth, simd, bits : int
    verilog_module : str, optional
        Instead of an Amaranth memory, instantiate the Verilog module of this name, which
        the caller emits with :meth:`verilog` (used by ``to_verilog``: Amaranth turns the
        initial contents of every word into netlist constants, which takes tens of seconds
        for a RAM of 10**5 words). Simulation in Amaranth uses the memory.
    banks : tuple of int, optional
        The Verilog module's bank depths: ``(depth,)`` (the default) or ``(2**k, depth - 2**k)``.
    """

    def __init__(self, depth: int, simd: int, bits: int, *, verilog_module: str | None = None,
                 banks: tuple[int, ...] | None = None):
        for name, v in (("depth", depth), ("simd", simd), ("bits", bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        banks = (depth,) if banks is None else tuple(banks)
        if not (banks == (depth,) or (len(banks) == 2 and banks[0] >= 2 and banks[0] & (banks[0] - 1) == 0
                                      and 0 < banks[1] <= banks[0] and sum(banks) == depth)):
            raise ValueError(f"banks must be ({depth},) or (2**k, {depth} - 2**k) with 2**k >= the rest, "
                             f"not {banks!r}")
        self._depth, self._simd, self._bits, self._banks = depth, simd, bits, banks
        self._module = verilog_module
        aw = addr_bits(depth)
        word = simd * bits  # packed lanes, lane 0 lowest
        super().__init__({
            "rd_addr": In(aw),
            "rd_en": In(1),
            "en": In(1, init=1),
            "rd_data": Out(word),
            "wr_addr": In(aw),
            "wr_en": In(simd),
            "wr_data": In(word),
        })

    @property
    def latency(self) -> int:
        return 1

    def verilog(self) -> str:
        """The RAM as a Verilog module named ``verilog_module``: the memory Amaranth builds
        (zeroed by a loop, one write enable per lane, read-first, a read register that
        holds while ``rd_en`` is low), in a few lines whatever its depth; in two banks when
        ``banks`` says so."""
        width, b = self._simd * self._bits, self._bits
        aw = self.rd_addr.shape().width
        lanes = [f"[{(i + 1) * b - 1}:{i * b}]" for i in range(self._simd)]
        style = memory_style(self._depth, width, rom=False)
        head = (f"module {self._module}(clk, rd_addr, rd_en, rd_data, wr_addr, wr_en, wr_data);\n"
                f"  input clk;\n  input [{aw - 1}:0] rd_addr;\n  input rd_en;\n  output reg [{width - 1}:0] rd_data;\n"
                f"  input [{aw - 1}:0] wr_addr;\n  input [{self._simd - 1}:0] wr_en;\n  input [{width - 1}:0] wr_data;\n")

        def bank(name: str, depth: int, addr: str, cond: str) -> str:
            writes = "".join(f"    if ({cond}wr_en[{i}]) {name}[{addr.format('wr')}]{r} <= wr_data{r};\n"
                             for i, r in enumerate(lanes))
            return (f'  (* ram_style = "{style}" *)\n'
                    f"  reg [{width - 1}:0] {name} [{depth - 1}:0];\n"
                    f"  initial begin\n    for (i = 0; i < {depth}; i = i + 1) {name}[i] = {width}'d0;\n  end\n"
                    f"  always @(posedge clk) begin\n{writes}  end\n")

        if len(self._banks) == 1:
            return (head + "  integer i;\n" + bank("mem", self._depth, "{}_addr", "")
                    + f"  always @(posedge clk) begin\n    if (rd_en) rd_data <= mem[rd_addr];\n  end\n"
                    f"endmodule\n")
        lo, hi = self._banks
        k = lo.bit_length() - 1  # address bit that picks the bank
        hb = max(1, (hi - 1).bit_length())
        return (head.replace("output reg", "output") + "  integer i;\n"
                + bank("mem_lo", lo, f"{{}}_addr[{k - 1}:0]", f"!wr_addr[{k}] && ")
                + bank("mem_hi", hi, f"{{}}_addr[{hb - 1}:0]", f"wr_addr[{k}] && ")
                + f"  reg [{width - 1}:0] rd_lo, rd_hi;\n  reg sel;\n"
                f"  always @(posedge clk) begin\n    if (rd_en) begin\n"
                f"      rd_lo <= mem_lo[rd_addr[{k - 1}:0]];\n      rd_hi <= mem_hi[rd_addr[{hb - 1}:0]];\n"
                f"      sel <= rd_addr[{k}];\n    end\n  end\n"
                f"  assign rd_data = sel ? rd_hi : rd_lo;\n"
                f"endmodule\n")

    def elaborate(self, platform):
        m = Module()
        if self._module is not None:
            m.submodules.ram = Instance(self._module, i_clk=ClockSignal(), i_rd_addr=self.rd_addr, i_rd_en=self.rd_en & self.en,
                                        o_rd_data=self.rd_data, i_wr_addr=self.wr_addr,
                                        i_wr_en=Mux(self.en, self.wr_en, 0),
                                        i_wr_data=self.wr_data)
            return m
        width = self._simd * self._bits
        m.submodules.mem = mem = memory.Memory(shape=unsigned(width), depth=self._depth, init=[],
                                               attrs={"ram_style": memory_style(self._depth, width, rom=False)})
        rd = mem.read_port()
        wr = mem.write_port(granularity=self._bits)
        m.d.comb += [
            rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en & self.en), self.rd_data.eq(rd.data),
            wr.addr.eq(self.wr_addr), wr.en.eq(Mux(self.en, self.wr_en, 0)), wr.data.eq(self.wr_data),
        ]
        return m
