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
    bram_blocks = 56
    bram_block_bits = 18432
    io_pins = 197
    spram_blocks = 0                # optional (iCE40 UltraPlus SPRAM)
    spram_block_bits = 0

    [array]
    pe = 4
    simd = 4

    [synth]
    yosys = "synth_ecp5 -abc9"      # hwflow appends -top and -json

    [pnr]
    tool = "nextpnr-ecp5"
    args = ["--25k", "--package", "CABGA256", "--speed", "6"]

Every mistake in such a file raises :class:`~hwflow.errors.TargetError` with one line
that names the file, the key and the bad value, and lists the known targets.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import TargetError

__all__ = ["DEFAULT_TARGET", "FAMILIES", "Target", "list_targets", "load_target"]

DEFAULT_TARGET = "fpga-small"
FAMILIES = ("ice40", "ecp5", "generic")

_ORDER = ("fpga-tiny", "fpga-small", "fpga-medium", "generic")
_PNR_TOOLS = {"ice40": "nextpnr-ice40", "ecp5": "nextpnr-ecp5"}
_SYNTH_CMDS = {"ice40": "synth_ice40", "ecp5": "synth_ecp5"}
_RESOURCE_KEYS = ("luts", "ffs", "dsps", "bram_blocks", "bram_block_bits", "io_pins")
_OPTIONAL_RESOURCE_KEYS = ("spram_blocks", "spram_block_bits")
_TOP_KEYS = {"name", "description", "family", "device", "package", "speed", "clock_mhz",
             "resources", "array", "synth", "pnr"}


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
    bram_blocks, bram_block_bits : int or None
        Number of block RAMs and bits in each (4096 for SB_RAM40_4K, 18432 for DP16KD).
    io_pins : int or None
        User I/O pins of the package.
    clock_mhz : float
        Clock goal; nextpnr is asked for it and Fmax is checked against it.
    pe, simd : int
        Default MAC-array shape (output channels x inputs in parallel).
    speed : int or None
        Speed grade (ECP5), passed to nextpnr.
    spram_blocks, spram_block_bits : int
        iCE40 UltraPlus single-port RAMs (0 elsewhere).
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
    bram_blocks: int | None = None
    bram_block_bits: int | None = None
    io_pins: int | None = None
    spram_blocks: int = 0
    spram_block_bits: int = 0
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

    @property
    def unlimited(self) -> bool:
        """True for ``generic``: no device and no resource limits."""
        return self.family == "generic"

    @property
    def bram_bits(self) -> int | None:
        """Total block-RAM bits (``None`` when unlimited)."""
        if self.bram_blocks is None or self.bram_block_bits is None:
            return None
        return self.bram_blocks * self.bram_block_bits

    @property
    def clock_period_ns(self) -> float:
        """Clock goal as a period in nanoseconds."""
        return 1000.0 / self.clock_mhz

    def to_json(self) -> dict:
        """A JSON-ready dict of every field (``pnr_args`` as a list)."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["pnr_args"] = list(self.pnr_args)
        d["bram_bits"] = self.bram_bits
        return d


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
    check_keys(res, _RESOURCE_KEYS + _OPTIONAL_RESOURCE_KEYS, "resources.")
    check_keys(synth, {"yosys"}, "synth.")
    check_keys(pnr, {"tool", "args"}, "pnr.")
    fields: dict = {}
    if family == "generic":
        for key in ("device", "package", "speed"):
            if key in doc:
                raise bad(f"a generic target has no {key}, but {key} = {doc[key]!r}")
        if res or synth or pnr:
            raise bad("a generic target has no [resources], [synth] or [pnr] (it is unlimited)")
    else:
        fields["device"] = string(doc, "device")
        fields["package"] = string(doc, "package")
        fields["speed"] = integer(doc, "speed", required=False, lo=1, hi=12)
        if not res:
            raise bad("missing table [resources]")
        for key in _RESOURCE_KEYS:
            fields[key] = integer(res, key, "resources.", lo=1 if key != "dsps" else 0)
        for key in _OPTIONAL_RESOURCE_KEYS:
            fields[key] = integer(res, key, "resources.", required=False, lo=0) or 0
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
