"""Fit the erf and erfc polynomials used by src/kernels/elementwise-math.wgsl.

Run with /usr/bin/python3 (needs numpy and mpmath). Prints the float32
coefficients, the relative error of each fit in float64 arithmetic, and the
relative error of the standard normal CDF as the kernel evaluates it, in
float32 arithmetic simulated with numpy.

- erf(z) = z * P(z^2) on |z| < SPLIT,
- erfc(a) = exp(-a^2) * Q(t) with t = 1 / (1 + T_SCALE * a) on SPLIT <= a <= 10.

Both fits minimise the maximum relative error by Lawson's iteratively
reweighted least squares, with mpmath at 30 digits as the reference.
"""

import mpmath
import numpy as np

mpmath.mp.dps = 30
SPLIT = 0.75
T_SCALE = 0.5
SMALL_DEGREE = 5  # in z^2
TAIL_DEGREE = 9  # in t
F32 = np.float32


def lawson_fit(basis, target, iterations=300):
    """Coefficients minimising max |basis @ c / target - 1|."""
    weights = np.full(len(target), 1.0 / len(target))
    relative = basis / target[:, None]
    ones = np.ones(len(target))
    for _ in range(iterations):
        root = np.sqrt(weights)
        coefficients, *_ = np.linalg.lstsq(relative * root[:, None], root, rcond=None)
        error = np.abs(relative @ coefficients - ones)
        weights = weights * error
        weights /= weights.sum()
    return coefficients, error.max()


def fit_small():
    z = np.linspace(1e-4, SPLIT, 3000)
    target = np.array([float(mpmath.erf(v) / v) for v in z])
    return lawson_fit(np.vander(z * z, SMALL_DEGREE + 1, increasing=True), target)


def fit_tail():
    a = np.linspace(SPLIT, 10.0, 4000)
    t = 1.0 / (1.0 + T_SCALE * a)
    target = np.array([float(mpmath.erfc(v) * mpmath.exp(mpmath.mpf(v) ** 2)) for v in a])
    return lawson_fit(np.vander(t, TAIL_DEGREE + 1, increasing=True), target)


def horner(coefficients, t):
    result = np.full_like(t, coefficients[-1])
    for c in coefficients[-2::-1]:
        result = (result * t + c).astype(F32)
    return result


def gauss_half(x):
    """exp(-x^2 / 2) in float32 with x split so that x_hi^2 is exact."""
    a = np.abs(x)
    a_hi = (a.view(np.uint32) & np.uint32(0xFFFFF000)).view(F32)
    a_lo = (a - a_hi).astype(F32)
    first = np.exp((F32(-0.5) * a_hi * a_hi).astype(F32)).astype(F32)
    second = np.exp((F32(-0.5) * a_lo * (a + a_hi)).astype(F32)).astype(F32)
    return (first * second).astype(F32)


def normal_cdf_f32(x, small, tail):
    z = (x * F32(0.70710678)).astype(F32)
    a = np.abs(z)
    near = (F32(0.5) + F32(0.5) * (z * horner(small, (z * z).astype(F32)))).astype(F32)
    t = (F32(1) / (F32(1) + F32(T_SCALE) * np.maximum(a, F32(SPLIT)))).astype(F32)
    half_erfc = (F32(0.5) * gauss_half(x) * horner(tail, t)).astype(F32)
    far = np.where(z < 0, half_erfc, F32(1) - half_erfc)
    return np.where(a < SPLIT, near, far).astype(np.float64)


def main():
    small, small_error = fit_small()
    tail, tail_error = fit_tail()
    small = small.astype(F32)
    tail = tail.astype(F32)
    print("erf small-|z| coefficients:", ", ".join(f"{c:.9e}" for c in small))
    print("erfc tail coefficients:", ", ".join(f"{c:.9e}" for c in tail))
    print(f"max relative error in float64: erf {small_error:.2e}, erfc {tail_error:.2e}")
    x = np.linspace(-13, 13, 20001).astype(F32)
    reference = np.array([float(mpmath.ncdf(float(v))) for v in x])
    got = normal_cdf_f32(x, small, tail)
    relative = np.abs(got - reference) / reference
    print(f"normal CDF in float32: max relative error {relative.max():.2e} on [-13, 13]")


if __name__ == "__main__":
    main()
