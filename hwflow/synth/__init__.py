"""Hand-off to synthesis: bundles, Yosys and nextpnr runners, report parsing."""
