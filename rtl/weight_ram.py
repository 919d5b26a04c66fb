"""Weight RAM: the weight memory in a kind the bitstream cannot initialise, loaded once.

The iCE40 UltraPlus SPRAM (``SB_SPRAM256KA``) has no initial contents, so a weight
memory placed there (:func:`hwflow.schedule.estimate.place_weights`) is filled after
reset through a stream: word ``i`` of the image (the same words, in the same order, as
the weight ROM's, :func:`hwflow.rtl.weight_rom.pack_words`) is the ``i``-th beat
accepted on ``load_data`` (valid/ready). ``load_ready`` is high until the last word is
in; the cycle after it, ``loaded`` goes high and stays high until reset. Reset clears
``loaded`` (the memory keeps its contents, but the core asks for them again). ``en`` low
holds the port (an input stall, :mod:`hwflow.rtl.accelerator`): it is the SPRAM's clock
enable.

The memory is single-port (one access a cycle: the SPRAM has one address): the loader
writes it while ``loaded`` is low, the controller reads it afterwards. Reading has the
weight ROM's latency, 1, so the cycle model is the ROM's.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..schedule.widths import addr_bits

__all__ = ["WeightRam"]


class WeightRam(wiring.Component):
    """``words`` words of ``width`` bits, loaded through a stream, then read like a ROM.
    While ``en`` is low ``data`` holds (the accelerator's stall).

    Parameters
    ----------
    words, width : int
        Depth and word width (``pe * simd * bits`` as the weight ROM packs them).
    ram_style : str
        The Yosys ``ram_style`` attribute placing the memory (the memory kind's: ``"huge"``
        for iCE40 SPRAM).
    verilog_module : str, optional
        Instead of an Amaranth memory, instantiate the Verilog module of this name, which
        the caller emits with :meth:`verilog` (used by ``to_verilog``: Amaranth gives every
        memory an all-zero initial value, which would keep Yosys from mapping it to a
        memory that has none). Simulation in Amaranth uses the memory.
    """

    def __init__(self, words: int, width: int, *, ram_style: str, verilog_module: str | None = None):
        for name, v in (("words", words), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if not isinstance(ram_style, str) or not ram_style.isidentifier():
            raise ValueError(f"ram_style must be a Yosys ram_style name, not {ram_style!r}")
        self._words, self._width, self._style, self._module = words, width, ram_style, verilog_module
        super().__init__({
            "addr": In(addr_bits(words)),
            "en": In(1, init=1),
            "data": Out(width),
            "load_valid": In(1),
            "load_ready": Out(1),
            "load_data": In(width),
            "loaded": Out(1),
        })

    @property
    def latency(self) -> int:
        return 1

    def verilog(self) -> str:
        """The memory as a single-port Verilog module named ``verilog_module``: no initial
        contents, read and write on one address, the read data held while writing (the
        iCE40 SPRAM's ``no_change`` port, which Yosys maps it to)."""
        aw = self.addr.shape().width
        w = self._width
        return (
            f"module {self._module}(clk, en, addr, we, wdata, data);\n"
            f"  input clk;\n  input en;\n  input we;\n  input [{aw - 1}:0] addr;\n  input [{w - 1}:0] wdata;\n"
            f"  output reg [{w - 1}:0] data;\n"
            f'  (* ram_style = "{self._style}" *)\n'
            f"  reg [{w - 1}:0] mem [0:{self._words - 1}];\n"
            f"  always @(posedge clk) if (en) begin\n"
            f"    if (we) mem[addr] <= wdata;\n"
            f"    else data <= mem[addr];\n"
            f"  end\n"
            f"endmodule\n"
        )

    def elaborate(self, platform):
        m = Module()
        count = Signal(self.addr.shape().width)  # the next word to load
        done = Signal()
        we = Signal()
        addr = Signal.like(self.addr)
        m.d.comb += [
            self.loaded.eq(done),
            self.load_ready.eq(~done),
            we.eq(self.load_valid & ~done),
            addr.eq(Mux(done, self.addr, count)),
        ]
        with m.If(we & self.en):
            m.d.sync += count.eq(count + 1)
            with m.If(count == self._words - 1):
                m.d.sync += done.eq(1)
        if self._module is not None:
            m.submodules.ram = Instance(self._module, i_clk=ClockSignal(), i_en=self.en, i_addr=addr, i_we=we,
                                        i_wdata=self.load_data, o_data=self.data)
            return m
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self._width), depth=self._words, init=[],
                                               attrs={"ram_style": self._style})
        rd = mem.read_port()
        wr = mem.write_port()
        m.d.comb += [
            rd.addr.eq(addr), rd.en.eq(~we & self.en), self.data.eq(rd.data),
            wr.addr.eq(addr), wr.en.eq(we & self.en), wr.data.eq(self.load_data),
        ]
        return m
