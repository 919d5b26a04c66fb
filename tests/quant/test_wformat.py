"""Weight formats: allowed values, stored codes, rounding, scale choice (hwflow.quant.wformat)."""

import numpy as np
import pytest

from hwflow.quant.wformat import DEFAULT_WBITS, WeightFormat, choose_scale, wbits_problem

ALL = [("int", 2), ("int", 8), ("pot", 3), ("pot", 4), ("pot", 5), ("binary", 1), ("ternary", 2)]


@pytest.mark.parametrize("name,wbits", ALL)
def test_codes_round_trip_and_fit_their_width(name, wbits):
    fmt = WeightFormat(name, wbits)
    codes = fmt.encode(fmt.levels)
    assert codes.min() >= 0 and codes.max() < 1 << wbits
    assert len(set(codes.tolist())) == len(fmt.levels)  # one code a value
    np.testing.assert_array_equal(fmt.decode(codes), fmt.levels)
    lo, hi = -(1 << (fmt.value_bits - 1)), (1 << (fmt.value_bits - 1)) - 1
    assert lo <= fmt.levels.min() and fmt.levels.max() <= hi  # value_bits holds every value...
    assert fmt.value_bits == 2 or fmt.levels.max() > hi // 2 or fmt.levels.min() < lo // 2  # ...and no fewer would


def test_pot_code_table():
    """Sign bit on top, exponent field below it, exponent field 0 is zero."""
    pot4 = WeightFormat("pot", 4)
    assert pot4.levels.tolist() == [-64, -32, -16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16, 32, 64]
    assert (pot4.exponents, pot4.value_bits, pot4.top) == (7, 8, 64)
    assert pot4.encode(np.array([0, 1, 8, 64, -1, -64])).tolist() == [0b0000, 0b0001, 0b0100, 0b0111, 0b1001, 0b1111]
    assert pot4.decode(np.array([0b1000])).tolist() == [0]  # "negative zero" reads as zero
    assert WeightFormat("pot", 5).top == 1 << 14 and WeightFormat("pot", 5).value_bits == 16
    assert WeightFormat("pot", 3).levels.tolist() == [-4, -2, -1, 0, 1, 2, 4]


def test_binary_and_ternary_codes():
    b, t = WeightFormat("binary", 1), WeightFormat("ternary", 2)
    assert b.encode(np.array([-1, 1])).tolist() == [0, 1] and b.value_bits == 2
    assert t.encode(np.array([-1, 0, 1])).tolist() == [0b11, 0b00, 0b01]
    with pytest.raises(ValueError, match="0b10 is unused"):
        t.decode(np.array([0b10]))
    with pytest.raises(ValueError, match="0 is not a binary1 weight value"):
        b.encode(np.array([1, 0]))
    with pytest.raises(ValueError, match="unsigned 4-bit"):
        WeightFormat("pot", 4).decode(np.array([16]))


def test_rounding():
    pot = WeightFormat("pot", 4)
    v = np.array([0.0, 0.49, 0.5, 1.4, 1.42, 2.0, 2.82, 2.84, 45.0, 46.0, 1000.0, -1.42, -0.3])
    # log domain: 2**k up to 2**(k+0.5); zero below 1/2; clamped to the window's top
    assert pot.round(v).tolist() == [0, 0, 1, 1, 2, 2, 2, 4, 32, 64, 64, -2, 0]
    assert WeightFormat("binary", 1).round(np.array([-0.1, 0.0, 3.0])).tolist() == [-1, 1, 1]
    assert WeightFormat("ternary", 2).round(np.array([-0.6, -0.4, 0.49, 0.5, 7.0])).tolist() == [-1, 0, 0, 1, 1]
    assert WeightFormat("int", 4).round(np.array([-9.0, -2.5, 2.5, 7.6])).tolist() == [-8, -3, 3, 7]


@pytest.mark.parametrize("name,wbits", [("pot", 4), ("pot", 3), ("binary", 1), ("ternary", 2)])
def test_choose_scale_is_the_least_mse_of_a_fine_search(name, wbits):
    fmt = WeightFormat(name, wbits)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 50)) * rng.uniform(0.1, 2.0, (6, 1))
    s = choose_scale(fmt, w, per_channel=True, pow2=False)

    def mse(row, scale):
        return float(((fmt.round(row / scale) * scale - row) ** 2).mean())

    for c in range(6):  # its 1/64-octave grid is within 2% of a 3000-point search
        brute = min(mse(w[c], f * np.abs(w[c]).max()) for f in np.geomspace(1e-3, 2.0, 3000))
        assert mse(w[c], s[c]) <= brute * 1.02
    if name == "binary":  # the closed form: the mean magnitude
        np.testing.assert_allclose(s, np.abs(w).mean(axis=1), rtol=0.02)


def test_choose_scale_pow2_and_per_tensor():
    fmt = WeightFormat("pot", 4)
    w = np.random.default_rng(2).standard_normal((4, 30))
    s = choose_scale(fmt, w, per_channel=True, pow2=True)
    assert np.all(np.exp2(np.round(np.log2(s))) == s)
    for c in range(4):
        mse = {e: ((fmt.round(w[c] / 2.0 ** e) * 2.0 ** e - w[c]) ** 2).mean() for e in range(-12, 4)}
        assert mse[np.log2(s[c])] == min(mse.values())
    assert choose_scale(fmt, w, per_channel=False, pow2=False).shape == (1,)


@pytest.mark.parametrize("name,wbits,msg", [
    ("binary", 4, "binary weights take wbits 1, not 4"),
    ("pot", 2, "pot weights take wbits 3..5"),
    ("pot", 6, "pot6 would need 32-bit weight values"),
    ("ternary", 1, "ternary weights take wbits 2, not 1"),
    ("int", 1, "int weights take wbits 2..16, not 1"),
    ("float", 8, "unknown weight format 'float'"),
])
def test_bad_widths(name, wbits, msg):
    assert msg in wbits_problem(name, wbits)
    with pytest.raises(ValueError, match=msg):
        WeightFormat(name, wbits)


def test_defaults_are_valid():
    for name, wbits in DEFAULT_WBITS.items():
        assert wbits_problem(name, wbits) is None
