"""FPGA targets: device, resources, clock goal, default array shape, tool settings.

A target is a TOML file. The shipped ones live in ``targets/`` (installed as
``hwflow._targets``); a user passes a name (``fpga-small``) or a path to their own file::

    name = "my-board"               # optional for a user file: defaults to the file stem
    description = "..."             # optional
    family = "ecp5"                 # "ice40" | "ecp5" | "generic"
    device = "LFE5U-25F"            # required unless generic
    package = "CABGA256"            # required unless generic
    speed = 6                       # optional speed grade (ECP5)
    clock_mhz = 100.0

    [resources]                     # required unless generic; absent means unlimited
    luts = 24288
    ffs = 24288
    dsps = 28
    io_pins = 197

    [memory.bram]                   # each memory kind, in the order the scheduler prefers them
    cell = "DP16KD"                 # the primitive (for messages and the manifest)
    blocks = 56                     # how many (required unless generic: unlimited)
    block_bits = 18432
    shapes = ["512x36", "1024x18", "2048x9", "4096x4", "8192x2", "16384x1"]  # depth x width
    init = true                     # the bitstream sets its contents (ROMs need that)
    ports = 2                       # 2: a read and a write in one cycle; 1: one access a cycle
    ram_style = "block"             # Yosys ram_style attribute that places a memory there

    [array]
    pe = 4
    simd = 4

    [synth]
    yosys = "synth_ecp5 -abc9"      # hwflow appends -top and -json

    [pnr]
    tool = "nextpnr-ecp5"
    args = ["--25k", "--package", "CABGA256", "--speed", "6"]

Memory kinds (``[memory.<kind>]``). A kind's name is the synthesis report's resource
key: ``bram`` (every family), ``spram`` (iCE40 UltraPlus single-port RAM). The first kind
must be initialisable and dual-port: the ROMs and the activation RAM go there (the
activation RAM is read and written in the same cycle while layers overlap). The scheduler
puts the weight memory in the first kind in which the design fits
(:func:`hwflow.schedule.estimate.place_weights`); a kind that the bitstream cannot
initialise (``init = false``) is loaded after configuration through the core's
weight-load port (:mod:`hwflow.rtl.weight_ram`). Every kind is counted exactly, in whole
blocks of its shapes, the one Yosys picks by the kind's ``byte`` (write-enable granularity)
and ``cost`` (:func:`hwflow.schedule.estimate.memory_blocks`). ``init``, ``ports``,
``ram_style``, ``byte`` and ``cost`` default to ``true``, 2, ``"block"``, 0 and 128; the
UP5K's SPRAM is::

    [memory.spram]
    cell = "SB_SPRAM256KA"
    blocks = 4
    block_bits = 262144
    shapes = ["16384x16"]
    init = false
    ports = 1
    ram_style = "huge"
    byte = 4
    cost = 2048

A generic target's file may leave out ``[memory]``: unlimited block RAM counted in
DP16KD blocks (:data:`GENERIC_BRAM`).

Every mistake in such a file raises :class:`~hwflow.errors.TargetError` with one line
that names the file, the key and the bad value, and lists the known targets.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from .errors import TargetError

__all__ = ["DEFAULT_TARGET", "FAMILIES", "GENERIC_BRAM", "MEMORY_KINDS", "MemoryKind", "Target", "list_targets",
           "load_target"]

DEFAULT_TARGET = "fpga-small"
FAMILIES = ("ice40", "ecp5", "generic")

_ORDER = ("fpga-tiny", "fpga-small", "fpga-medium", "generic")
_PNR_TOOLS = {"ice40": "nextpnr-ice40", "ecp5": "nextpnr-ecp5"}
_SYNTH_CMDS = {"ice40": "synth_ice40", "ecp5": "synth_ecp5"}
_RESOURCE_KEYS = ("luts", "ffs", "dsps", "io_pins")
_TOP_KEYS = {"name", "description", "family", "device", "package", "speed", "clock_mhz",
             "resources", "memory", "array", "synth", "pnr"}
_MEMORY_KEYS = {"cell", "blocks", "block_bits", "shapes", "init", "ports", "ram_style", "byte", "cost"}
#: The memory kinds each family may declare: the names the synthesis report counts.
MEMORY_KINDS = {"ice40": ("bram", "spram"), "ecp5": ("bram",), "generic": ("bram",)}
#: Where the keys of the old schema went.
_MOVED = {"bram_blocks": "[memory.bram] blocks", "bram_block_bits": "[memory.bram] block_bits",
          "spram_blocks": "[memory.spram] blocks", "spram_block_bits": "[memory.spram] block_bits"}


@dataclass(frozen=True)
class MemoryKind:
    """One kind of on-chip memory of a target: block RAM, single-port RAM, ...

    Parameters
    ----------
    name : str
        ``"bram"`` or ``"spram"``: also the synthesis report's resource key.
    cell : str
        The primitive (``"SB_RAM40_4K"``, ``"SB_SPRAM256KA"``, ``"DP16KD"``).
    blocks : int or None
        How many the device has (``None``: unlimited, the ``generic`` target).
    block_bits : int
        Bits in one block.
    shapes : tuple of (int, int)
        The ``(depth, width)`` configurations one block can take; a memory is tiled into
        whole blocks of them (:func:`hwflow.schedule.estimate.memory_blocks`).
    init : bool
        The bitstream sets its contents: ROMs can live there. Otherwise its contents
        are loaded after configuration (the weight-load port).
    ports : int
        2: a read and a write in the same cycle (simple dual port); 1: one access a cycle.
    ram_style : str
        The Yosys ``ram_style`` attribute that places a memory in this kind.
    byte : int
        The write enable's granularity in bits (ECP5 DP16KD 9, UP5K SPRAM 4, iCE40
        SB_RAM40_4K 1); 0: one enable a block word. Lanes of a written memory start on a byte.
    cost : int
        Yosys's cost of a block (its library file's ``cost``: DP16KD 128, SB_RAM40_4K 64,
        SPRAM 2048), weighed against the multiplexers a deep memory needs.
    """

    name: str
    cell: str
    blocks: int | None
    block_bits: int
    shapes: tuple[tuple[int, int], ...]
    init: bool = True
    ports: int = 2
    ram_style: str = "block"
    byte: int = 0
    cost: int = 128

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"memory kind name must be an identifier, not {self.name!r}")
        if self.blocks is not None and (isinstance(self.blocks, bool) or not isinstance(self.blocks, int)
                                        or self.blocks < 0):
            raise ValueError(f"memory kind {self.name}: blocks must be a non-negative int or None, "
                             f"not {self.blocks!r}")
        if isinstance(self.block_bits, bool) or not isinstance(self.block_bits, int) or self.block_bits < 1:
            raise ValueError(f"memory kind {self.name}: block_bits must be a positive int, not {self.block_bits!r}")
        if not self.shapes or not all(isinstance(d, int) and isinstance(w, int) and d >= 1 and w >= 1
                                      and d * w <= self.block_bits for d, w in self.shapes):
            raise ValueError(f"memory kind {self.name}: shapes must be (depth, width) pairs of at most "
                             f"block_bits = {self.block_bits} bits, not {self.shapes!r}")
        if self.ports not in (1, 2):
            raise ValueError(f"memory kind {self.name}: ports must be 1 or 2, not {self.ports!r}")
        for field, lo in (("byte", 0), ("cost", 1)):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"memory kind {self.name}: {field} must be an int >= {lo}, not {v!r}")

    @property
    def bits(self) -> int | None:
        """Total bits (``None`` when unlimited)."""
        return None if self.blocks is None else self.blocks * self.block_bits

    def describe(self) -> str:
        """``"30 bram (SB_RAM40_4K, 4 kbit)"``: count, name, cell and block size, for messages."""
        count = "unlimited" if self.blocks is None else str(self.blocks)
        return f"{count} {self.name} ({self.cell}, {self.block_bits // 1024} kbit)"

    def to_json(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["shapes"] = [f"{a}x{b}" for a, b in self.shapes]
        return d


@dataclass(frozen=True)
class Target:
    """One FPGA target (or ``generic``: no device, no limits).

    Resource fields are ``None`` when unlimited (the ``generic`` family).

    Parameters
    ----------
    name, description : str
        Short name (``fpga-small``) and a one-line description.
    family : str
        ``"ice40"``, ``"ecp5"`` or ``"generic"``.
    device, package : str or None
        Part and package as nextpnr spells them (``"LFE5U-25F"``, ``"CABGA256"``).
    luts, ffs, dsps : int or None
        LUT4s, flip-flops and hard multipliers (SB_MAC16 / MULT18X18D).
    memory : tuple of MemoryKind
        The on-chip memory kinds, the scheduler's preference first; the first one is
        initialisable and dual-port (the block RAM).
    io_pins : int or None
        User I/O pins of the package.
    clock_mhz : float
        Clock goal; nextpnr is asked for it and Fmax is checked against it.
    pe, simd : int
        Default MAC-array shape (output channels x inputs in parallel).
    speed : int or None
        Speed grade (ECP5), passed to nextpnr.
    yosys_synth : str or None
        Yosys synthesis command with options, without ``-top``/``-json``.
    pnr_tool : str or None
        nextpnr flavour (``nextpnr-ice40`` / ``nextpnr-ecp5``).
    pnr_args : tuple of str
        Device arguments for nextpnr.
    source : str
        Where the target was read from (file path), for messages.
    """

    name: str
    family: str
    clock_mhz: float
    pe: int
    simd: int
    description: str = ""
    device: str | None = None
    package: str | None = None
    speed: int | None = None
    luts: int | None = None
    ffs: int | None = None
    dsps: int | None = None
    memory: tuple[MemoryKind, ...] = ()
    io_pins: int | None = None
    yosys_synth: str | None = None
    pnr_tool: str | None = None
    pnr_args: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, not {self.family!r}")
        if not isinstance(self.pe, int) or self.pe < 1:
            raise ValueError(f"pe must be a positive int, not {self.pe!r}")
        if not isinstance(self.simd, int) or self.simd < 1:
            raise ValueError(f"simd must be a positive int, not {self.simd!r}")
        if not self.clock_mhz > 0:
            raise ValueError(f"clock_mhz must be positive, not {self.clock_mhz!r}")
        if not isinstance(self.memory, tuple) or not all(isinstance(k, MemoryKind) for k in self.memory):
            raise ValueError(f"memory must be a tuple of MemoryKind, not {self.memory!r}")
        names = [k.name for k in self.memory]
        if len(set(names)) != len(names):
            raise ValueError(f"memory kinds must have distinct names, not {names!r}")
        if self.memory and not (self.memory[0].init and self.memory[0].ports == 2):
            raise ValueError(f"the first memory kind ({self.memory[0].name}) must be initialisable and "
                             "dual-port: the ROMs and the activation RAM go there")

    @property
    def unlimited(self) -> bool:
        """True for ``generic``: no device and no resource limits."""
        return self.family == "generic"

    def memory_kind(self, name: str) -> MemoryKind | None:
        """The memory kind called ``name``, or ``None`` when the target has none."""
        return next((k for k in self.memory if k.name == name), None)

    @property
    def block_ram(self) -> MemoryKind | None:
        """The first memory kind: initialisable, dual-port (ROMs and the activation RAM)."""
        return self.memory[0] if self.memory else None

    @property
    def bram_blocks(self) -> int | None:
        """Blocks of the block RAM (``None`` when unlimited)."""
        return self.block_ram.blocks if self.block_ram else None

    @property
    def bram_block_bits(self) -> int | None:
        """Bits in one block of the block RAM."""
        return self.block_ram.block_bits if self.block_ram else None

    @property
    def bram_bits(self) -> int | None:
        """Total block-RAM bits (``None`` when unlimited)."""
        return self.block_ram.bits if self.block_ram else None

    def with_memory(self, **blocks: int | None) -> "Target":
        """A copy with other block counts for the named kinds (``None``: unlimited), e.g.
        ``t.with_memory(bram=None)`` for a calibration run without a memory limit."""
        unknown = set(blocks) - {k.name for k in self.memory}
        if unknown:
            raise ValueError(f"target {self.name} has no memory kind {sorted(unknown)!r}")
        return replace(self, memory=tuple(replace(k, blocks=blocks.get(k.name, k.blocks)) for k in self.memory))

    @property
    def clock_period_ns(self) -> float:
        """Clock goal as a period in nanoseconds."""
        return 1000.0 / self.clock_mhz

    def to_json(self) -> dict:
        """A JSON-ready dict of every field (``pnr_args`` as a list)."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["pnr_args"] = list(self.pnr_args)
        d["memory"] = [k.to_json() for k in self.memory]
        d["bram_bits"] = self.bram_bits
        return d


#: A generic target's memory when its file names none: unlimited block RAM, counted in ECP5
#: DP16KD blocks (so a generic estimate reads like an ECP5 one).
GENERIC_BRAM = MemoryKind("bram", "DP16KD", None, 18432,
                          ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)), byte=9, cost=128)


def list_targets() -> list[str]:
    """Names of the shipped targets, smallest device first, ``generic`` last.

    Returns
    -------
    list of str
        ``["fpga-tiny", "fpga-small", "fpga-medium", "generic"]``, then any other
        file in ``targets/`` in alphabetical order.
    """
    names = {p.name[:-5] for p in resources.files("hwflow._targets").iterdir()
             if p.name.endswith(".toml")}
    return [n for n in _ORDER if n in names] + sorted(names - set(_ORDER))


def _known() -> str:
    return f"known targets: {', '.join(list_targets())} (or a path to a .toml file)"


def load_target(name_or_path: str | Path | Target | None = None) -> Target:
    """Load a target by name or from a TOML file.

    Parameters
    ----------
    name_or_path : str, Path, Target or None
        A shipped target's name (see :func:`list_targets`), a path to a ``.toml`` file,
        an already loaded :class:`Target` (returned as is), or ``None`` for
        :data:`DEFAULT_TARGET`.

    Returns
    -------
    Target

    Raises
    ------
    TargetError
        Unknown name, unreadable or malformed file; the message lists the known targets.
    """
    if isinstance(name_or_path, Target):
        return name_or_path
    if name_or_path is None:
        name_or_path = DEFAULT_TARGET
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"target must be a name, a path or a Target, not {name_or_path!r}")
    spec = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or spec.endswith(".toml") or "/" in spec
    if not looks_like_path:
        if spec not in list_targets():
            raise TargetError(f"unknown target {spec!r}; {_known()}")
        res = resources.files("hwflow._targets") / f"{spec}.toml"
        return _parse(res.read_text(encoding="utf-8"), f"target {spec!r}", spec)
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(f"target file {spec} does not exist; {_known()}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read target file {spec}: {exc}; {_known()}") from None
    return _parse(text, f"target file {spec}", path.stem, source=str(path.resolve()))


def _parse(text: str, where: str, default_name: str, source: str = "") -> Target:
    def bad(msg: str) -> TargetError:
        return TargetError(f"{where}: {msg}; {_known()}")

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise bad(f"not valid TOML ({exc})") from None

    def table(key: str) -> dict:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise bad(f"[{key}] must be a table, not {value!r}")
        return value

    def check_keys(d: dict, allowed, prefix: str) -> None:
        for key in d:
            if key not in allowed:
                raise bad(f"unknown key '{prefix}{key}' (allowed: {', '.join(sorted(allowed))})")

    def string(d: dict, key: str, prefix: str = "", required: bool = True) -> str | None:
        if key not in d:
            if required:
                raise bad(f"missing key '{prefix}{key}'")
            return None
        value = d[key]
        if not isinstance(value, str) or not value.strip():
            raise bad(f"{prefix}{key} must be a non-empty string, not {value!r}")
        return value

    def integer(d: dict, key: str, prefix: str = "", required: bool = True,
                lo: int = 1, hi: int = 10**9) -> int | None:
        if key not in d:
            if required:
                raise bad(f"missing key '{prefix}{key}'")
            return None
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise bad(f"{prefix}{key} must be an integer in [{lo}, {hi}], not {value!r}")
        return value

    check_keys(doc, _TOP_KEYS, "")
    family = string(doc, "family")
    if family not in FAMILIES:
        raise bad(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    name = string(doc, "name", required=False) or default_name
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise bad(f"description must be a string, not {description!r}")
    clock = doc.get("clock_mhz")
    if clock is None:
        raise bad("missing key 'clock_mhz'")
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not 0 < clock <= 1000:
        raise bad(f"clock_mhz must be a number in (0, 1000], not {clock!r}")

    array = table("array")
    check_keys(array, {"pe", "simd"}, "array.")
    pe = integer(array, "pe", "array.", hi=4096)
    simd = integer(array, "simd", "array.", hi=4096)

    res, synth, pnr = table("resources"), table("synth"), table("pnr")
    for key in res:
        if key in _MOVED:
            raise bad(f"resources.{key} is now {_MOVED[key]} (memory kinds have their own tables)")
    check_keys(res, _RESOURCE_KEYS, "resources.")
    check_keys(synth, {"yosys"}, "synth.")
    check_keys(pnr, {"tool", "args"}, "pnr.")
    fields: dict = {}
    if family == "generic":
        for key in ("device", "package", "speed"):
            if key in doc:
                raise bad(f"a generic target has no {key}, but {key} = {doc[key]!r}")
        if res or synth or pnr:
            raise bad("a generic target has no [resources], [synth] or [pnr] (it is unlimited)")
        fields["memory"] = _memory_kinds(table("memory"), family, bad, integer, string) if "memory" in doc \
            else (GENERIC_BRAM,)
    else:
        fields["memory"] = _memory_kinds(table("memory"), family, bad, integer, string)
        fields["device"] = string(doc, "device")
        fields["package"] = string(doc, "package")
        fields["speed"] = integer(doc, "speed", required=False, lo=1, hi=12)
        if not res:
            raise bad("missing table [resources]")
        for key in _RESOURCE_KEYS:
            fields[key] = integer(res, key, "resources.", lo=1 if key != "dsps" else 0)
        yosys = string(synth, "yosys", "synth.", required=False) or _SYNTH_CMDS[family]
        if yosys.split()[0] != _SYNTH_CMDS[family]:
            raise bad(f"synth.yosys must start with {_SYNTH_CMDS[family]} for family "
                      f"{family}, not {yosys!r}")
        if any(opt in yosys.split() for opt in ("-top", "-json")):
            raise bad(f"synth.yosys must not set -top or -json (hwflow adds them): {yosys!r}")
        tool = string(pnr, "tool", "pnr.", required=False) or _PNR_TOOLS[family]
        if tool != _PNR_TOOLS[family]:
            raise bad(f"pnr.tool must be {_PNR_TOOLS[family]} for family {family}, "
                      f"not {tool!r}")
        args = pnr.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise bad(f"pnr.args must be a list of strings, not {args!r}")
        fields.update(yosys_synth=yosys, pnr_tool=tool, pnr_args=tuple(args))
    return Target(name=name, family=family, clock_mhz=float(clock), pe=pe, simd=simd,
                  description=description, source=source, **fields)


def _memory_kinds(mem: dict, family: str, bad, integer, string) -> tuple[MemoryKind, ...]:
    """The ``[memory.<kind>]`` tables as MemoryKinds, in file order."""
    allowed = MEMORY_KINDS[family]
    for name in mem:
        if name not in allowed:
            raise bad(f"unknown memory kind [memory.{name}] for family {family} (allowed: {', '.join(allowed)})")
    if "bram" not in mem:
        raise bad("missing table [memory.bram] (the block RAM: ROMs and the activation RAM go there)")
    kinds = []
    for name, t in mem.items():
        where = f"memory.{name}."
        if not isinstance(t, dict):
            raise bad(f"[memory.{name}] must be a table, not {t!r}")
        for key in t:
            if key not in _MEMORY_KEYS:
                raise bad(f"unknown key '{where}{key}' (allowed: {', '.join(sorted(_MEMORY_KEYS))})")
        blocks = integer(t, "blocks", where, required=family != "generic", lo=0)
        if family == "generic" and blocks is not None:
            raise bad(f"a generic target's memory is unlimited, but {where}blocks = {blocks!r}")
        bits = integer(t, "block_bits", where, hi=2**30)
        shapes = t.get("shapes")
        if not isinstance(shapes, list) or not shapes:
            raise bad(f"{where}shapes must be a list of \"DEPTHxWIDTH\" strings, not {shapes!r}")
        parsed = []
        for shape in shapes:
            parts = shape.lower().split("x") if isinstance(shape, str) else []
            if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts) \
                    or int(parts[0]) * int(parts[1]) > bits:
                raise bad(f"{where}shapes: each must be \"DEPTHxWIDTH\" of at most block_bits = {bits} "
                          f"bits, not {shape!r}")
            parsed.append((int(parts[0]), int(parts[1])))
        init = t.get("init", True)
        if not isinstance(init, bool):
            raise bad(f"{where}init must be true or false, not {init!r}")
        ports = integer(t, "ports", where, required=False, lo=1, hi=2) or 2
        style = string(t, "ram_style", where, required=False) or "block"
        cell = string(t, "cell", where)
        byte = integer(t, "byte", where, required=False, lo=0, hi=bits) or 0
        cost = integer(t, "cost", where, required=False) or 128
        kinds.append(MemoryKind(name=name, cell=cell, blocks=blocks, block_bits=bits, shapes=tuple(parsed),
                                init=init, ports=ports, ram_style=style, byte=byte, cost=cost))
    if not (kinds[0].name == "bram" and kinds[0].init and kinds[0].ports == 2):
        raise bad("[memory.bram] must come first and be initialisable (init = true) and dual-port (ports = 2): "
                  "the ROMs and the activation RAM go there")
    return tuple(kinds)
