"""Activation RAM: simple dual port (one synchronous read port, one write port).

A word holds ``simd`` signed lanes of ``bits``; the write port has one enable per lane
(granularity ``bits``), so a single code can be written into its channel lane. Tensors
live in HWC order with channels padded to a multiple of ``simd`` (see
:mod:`hwflow.schedule.memory`). The read port has an enable: when it is low the data
output holds, which the output stream uses for back-pressure. ``en`` low holds both ports
(the accelerator's input stall: the Verilog module is outside Amaranth's
``EnableInserter``, so it takes the enable as the weight memories do). Latency 1.

The write port is registered: a write reaches the memory a cycle after the ports
(:attr:`ActBuffer.write_latency`, the schedule's ``lat["write"]``), so the address decode
of a RAM of many blocks starts at flip-flops, not at the write's source (the input stream's
handshake or the back end's multiplexer: MobileNetV1 fpga-medium, ctrl.in_ready -> a bank's
write enable, 12.2 ns). ``mem_wr_addr``, ``mem_wr_en`` are the write as the memory sees it.

``rd_q`` is ``rd_data`` one cycle later (a register that loads in every cycle ``en`` is
high): the datapath's read data register (:data:`~hwflow.schedule.program.READ_DATA_REGS`).

The Verilog module may build the RAM from banks (``banks``, chosen by
:func:`hwflow.schedule.estimate.read_banks`): one per address slice of the target's block
RAM, ``d`` words each (a power of two) but the last. Each bank's read data has its own
``rd_q`` register, and the bank multiplexer (on the registered bank select) comes after
them: a block RAM's clock-to-out and the multiplexer are not one path. ``rd_data`` is the
multiplexer of the banks' reads themselves (the output stream reads it).
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..schedule.estimate import check_banks, memory_style
from ..schedule.widths import addr_bits
from ._banks import bank_mux

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
        The Verilog module's bank depths: ``(depth,)`` (the default) or ``(d, ..., d, rest)``
        with ``d`` a power of two, ``0 < rest <= d``.
    """

    def __init__(self, depth: int, simd: int, bits: int, *, verilog_module: str | None = None,
                 banks: tuple[int, ...] | None = None):
        for name, v in (("depth", depth), ("simd", simd), ("bits", bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        banks = check_banks(banks, depth)
        self._depth, self._simd, self._bits, self._banks = depth, simd, bits, banks
        self._module = verilog_module
        aw = addr_bits(depth)
        word = simd * bits  # packed lanes, lane 0 lowest
        super().__init__({
            "rd_addr": In(aw),
            "rd_en": In(1),
            "en": In(1, init=1),
            "rd_data": Out(word),
            "rd_q": Out(word),
            "wr_addr": In(aw),
            "wr_en": In(simd),
            "wr_data": In(word),
        })
        self.mem_wr_addr = Signal(aw, name="mem_wr_addr", reset_less=True)
        self.mem_wr_en = Signal(simd, name="mem_wr_en")
        self._mem_wr_data = Signal(word, name="mem_wr_data", reset_less=True)

    @property
    def latency(self) -> int:
        return 1

    @property
    def write_latency(self) -> int:
        """Cycles from the write ports to the memory's write."""
        return 1

    def verilog(self) -> str:
        """The RAM as a Verilog module named ``verilog_module``: the memory Amaranth builds
        (zeroed by a loop, one write enable per lane, a read register that holds while
        ``rd_en`` is low) and the ``rd_q`` register (loads while ``en``), in a few lines
        whatever its depth; in banks when ``banks`` says so. The memory is marked
        ``no_rw_check``: the core never reads a word in the cycle it writes it (the
        controller reads only the words a step needs, the schedule keeps those apart from
        the writes; tests/rtl/test_accelerator.py checks it), so Yosys need not emulate
        read-first on a block RAM whose collisions are undefined (the UP5K's: a write-address
        compare and a bypass multiplexer before the read register, the slowest path)."""
        width, b = self._simd * self._bits, self._bits
        aw = self.rd_addr.shape().width
        lanes = [f"[{(i + 1) * b - 1}:{i * b}]" for i in range(self._simd)]
        style = memory_style(self._depth, width, rom=False)
        head = (f"module {self._module}(clk, en, rd_addr, rd_en, rd_data, rd_q, wr_addr, wr_en, wr_data);\n"
                f"  input clk;\n  input en;\n  input [{aw - 1}:0] rd_addr;\n  input rd_en;\n"
                f"  output reg [{width - 1}:0] rd_data;\n  output reg [{width - 1}:0] rd_q;\n"
                f"  input [{aw - 1}:0] wr_addr;\n  input [{self._simd - 1}:0] wr_en;\n  input [{width - 1}:0] wr_data;\n"
                f"  integer i;\n")

        def bank(name: str, depth: int, addr: str, cond: str) -> str:
            writes = "".join(f"    if ({cond}wr_en[{i}]) {name}[{addr.format('wr')}]{r} <= wr_data{r};\n"
                             for i, r in enumerate(lanes))
            return (f'  (* ram_style = "{style}", no_rw_check *)\n'
                    f"  reg [{width - 1}:0] {name} [{depth - 1}:0];\n"
                    f"  initial begin\n    for (i = 0; i < {depth}; i = i + 1) {name}[i] = {width}'d0;\n  end\n"
                    f"  always @(posedge clk) begin\n{writes}  end\n")

        if len(self._banks) == 1:
            return (head + bank("mem", self._depth, "{}_addr", "")
                    + f"  always @(posedge clk) begin\n    if (rd_en) rd_data <= mem[rd_addr];\n"
                    f"    if (en) rd_q <= rd_data;\n  end\n"
                    f"endmodule\n")
        n, k = len(self._banks), self._banks[0].bit_length() - 1  # address bits [aw-1:k] pick the bank
        sb = aw - k
        text = head
        for j, depth in enumerate(self._banks):
            hb = max(1, (depth - 1).bit_length())
            text += bank(f"mem_{j}", depth, f"{{}}_addr[{hb - 1}:0]", f"wr_addr[{aw - 1}:{k}] == {j} && ")
            text += (f"  reg [{width - 1}:0] rd_{j}, q_{j};\n"
                     f"  always @(posedge clk) begin\n    if (rd_en) rd_{j} <= mem_{j}[rd_addr[{hb - 1}:0]];\n"
                     f"    if (en) q_{j} <= rd_{j};\n  end\n")
        return (text + f"  reg [{sb - 1}:0] sel, sel_q;\n"
                f"  always @(posedge clk) begin\n    if (rd_en) sel <= rd_addr[{aw - 1}:{k}];\n"
                f"    if (en) sel_q <= sel;\n  end\n"
                + bank_mux(n, ("rd_data", "sel", "rd_"), ("rd_q", "sel_q", "q_")) + "endmodule\n")

    def elaborate(self, platform):
        m = Module()
        wa, we, wd = self.mem_wr_addr, self.mem_wr_en, self._mem_wr_data
        with m.If(self.en):
            m.d.sync += [wa.eq(self.wr_addr), we.eq(self.wr_en), wd.eq(self.wr_data)]
        if self._module is not None:
            m.submodules.ram = Instance(self._module, i_clk=ClockSignal(), i_en=self.en, i_rd_addr=self.rd_addr,
                                        i_rd_en=self.rd_en & self.en, o_rd_data=self.rd_data, o_rd_q=self.rd_q,
                                        i_wr_addr=wa, i_wr_en=Mux(self.en, we, 0), i_wr_data=wd)
            return m
        width = self._simd * self._bits
        m.submodules.mem = mem = memory.Memory(shape=unsigned(width), depth=self._depth, init=[],
                                               attrs={"ram_style": memory_style(self._depth, width, rom=False)})
        rd = mem.read_port()
        wr = mem.write_port(granularity=self._bits)
        m.d.comb += [
            rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en & self.en), self.rd_data.eq(rd.data),
            wr.addr.eq(wa), wr.en.eq(Mux(self.en, we, 0)), wr.data.eq(wd),
        ]
        q = Signal(width, reset_less=True)  # as the Verilog module's (no reset)
        with m.If(self.en):
            m.d.sync += q.eq(rd.data)
        m.d.comb += self.rd_q.eq(q)
        return m
