// Math helpers shared by the binary and unary kernels. Not a kernel itself:
// elementwise-kernels.ts splices this text into their MATH placeholder.
//
// WGSL leaves NaN, infinities and the results of log, sqrt and pow outside
// their domains to the implementation, so the helpers below produce the
// IEEE results that PyTorch returns explicitly. NaN and infinity come from
// bit patterns read through a `var`: as constant expressions they would be
// shader-creation errors.

fn nan_f32() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

fn inf_f32() -> f32 {
  var bits = 0x7f800000u;
  return bitcast<f32>(bits);
}

// Tests the bits: comparisons with NaN may be folded away by compilers that
// assume finite math.
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// The truth value of a float condition, as the where kernel reads it:
// nonzero or NaN is true.
fn is_nonzero(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) != 0u;
}

// e^x with Cody-Waite range reduction: x = k ln2 + r with |r| <= ln2 / 2,
// and e^x = 2^k e^r. Devices that evaluate exp(x) as exp2(x log2(e)) lose
// about |x| * 6e-8 of relative accuracy in the product (lavapipe does:
// 6e-6 at x = -60); here the error stays that of exp on |r| <= 0.35.
// ln2 is split into 0.693145751953125 (15 bits, so k * ln2_hi is exact)
// and 1.4286068e-6.
fn accurate_exp(x: f32) -> f32 {
  if (is_nan(x)) {
    return x;
  }
  // e^-104 is below the smallest subnormal and e^89 above the largest f32.
  let clamped = clamp(x, -104.0, 89.0);
  let k = round(clamped * 1.442695);
  let r = (clamped - k * 0.693145751953125) - k * 1.4286068e-6;
  return ldexp(exp(r), i32(k));
}

// log with log(0) = -inf and log(v < 0) = NaN.
fn safe_log(v: f32) -> f32 {
  if (v < 0.0 || is_nan(v)) {
    return nan_f32();
  }
  if (v == 0.0) {
    return -inf_f32();
  }
  return log(v);
}

// sqrt with sqrt(v < 0) = NaN.
fn safe_sqrt(v: f32) -> f32 {
  if (v < 0.0) {
    return nan_f32();
  }
  return sqrt(v);
}

// x^n for an integer n >= 0 by repeated squaring: exact for small integer
// powers, where pow() through exp2 and log2 is off by an ulp or two.
fn pow_integer(x: f32, n: u32) -> f32 {
  var result = 1.0;
  var base = x;
  var rest = n;
  while (rest > 0u) {
    if ((rest & 1u) == 1u) {
      result *= base;
    }
    base *= base;
    rest = rest >> 1u;
  }
  return result;
}

// x^y with C's rules: x^0 = 1 and 1^y = 1 (also for NaN), a negative base
// takes integer exponents only (else NaN), 0^y is 0 for y > 0 and inf for
// y < 0, negated for -0 and odd y. Integer exponents up to 64 in magnitude
// go through pow_integer.
fn pow_f(x: f32, y: f32) -> f32 {
  if (y == 0.0 || x == 1.0) {
    return 1.0;
  }
  if (is_nan(x) || is_nan(y)) {
    return nan_f32();
  }
  if (y == 0.5 && x >= 0.0) {
    // Correctly rounded, where pow() may be off by an ulp or two.
    return sqrt(x);
  }
  let is_integer = floor(y) == y;
  if (is_integer && abs(y) <= 64.0) {
    let magnitude = pow_integer(x, u32(abs(y)));
    return select(magnitude, 1.0 / magnitude, y < 0.0);
  }
  if (x < 0.0 && !is_integer) {
    return nan_f32();
  }
  let magnitude = abs(x);
  var result: f32;
  if (magnitude == 0.0) {
    result = select(inf_f32(), 0.0, y > 0.0);
  } else {
    result = pow(magnitude, y);
  }
  let is_odd = is_integer && floor(y * 0.5) != y * 0.5;
  let sign_bit = (bitcast<u32>(x) & 0x80000000u) != 0u;
  return select(result, -result, sign_bit && is_odd);
}

// d(x^y)/dx = y x^(y-1), and 0 for y = 0 as in PyTorch.
fn pow_base_grad(x: f32, y: f32) -> f32 {
  if (y == 0.0) {
    return 0.0;
  }
  return y * pow_f(x, y - 1.0);
}

// d(x^y)/dy = x^y log(x), and 0 where x = 0 and y >= 0 as in PyTorch.
fn pow_exponent_grad(x: f32, y: f32) -> f32 {
  if (x == 0.0 && y >= 0.0) {
    return 0.0;
  }
  return pow_f(x, y) * safe_log(x);
}

// max and min that return NaN when either operand is NaN (WGSL's builtins
// may return the other operand).
fn max_nan(x: f32, y: f32) -> f32 {
  return select(max(x, y), nan_f32(), is_nan(x) || is_nan(y));
}

fn min_nan(x: f32, y: f32) -> f32 {
  return select(min(x, y), nan_f32(), is_nan(x) || is_nan(y));
}

// 1 / (1 + e^-v) through e^-|v|, which never overflows.
fn stable_sigmoid(v: f32) -> f32 {
  let e = accurate_exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// tanh without overflow: a Taylor series near 0 and (1 - e^-2a) / (1 + e^-2a)
// elsewhere, where e^-2a <= 0.61 so that 1 - e^-2a keeps its precision.
fn stable_tanh(v: f32) -> f32 {
  let a = abs(v);
  if (a < 0.25) {
    // Terms to v^9; the first omitted one, 1382/155925 v^11, is below
    // 1e-8 relative to tanh(v) for |v| < 0.25.
    let s = v * v;
    return v * (1.0 + s * (-0.33333333 + s * (0.13333333 + s * (-0.053968254 + s * 0.021869489))));
  }
  let t = accurate_exp(-2.0 * a);
  return sign(v) * (1.0 - t) / (1.0 + t);
}

// exp(-x^2 / 2). Splitting |x| = hi + lo with hi keeping 12 significant bits
// makes hi^2 exact in f32, so the exponent has no rounding error to amplify:
// x^2 = hi^2 + lo (|x| + hi).
fn gauss_half(x: f32) -> f32 {
  let a = abs(x);
  if (a > 20.0) {
    return 0.0;
  }
  let hi = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  let lo = a - hi;
  return accurate_exp(-0.5 * hi * hi) * exp(-0.5 * lo * (a + hi));
}

// erf(z) = z P(z^2) for |z| < 0.75; max relative error 1.4e-9 in exact
// arithmetic (fit by scripts/fit-erf.py).
fn erf_small(z: f32) -> f32 {
  let s = z * z;
  return z * (1.128379107 + s * (-0.3761262000 + s * (0.1128337681 + s * (-0.02683462203
    + s * (0.005114341155 + s * -0.0006749479799)))));
}

// erfc(a) exp(a^2) = Q(t), t = 1 / (1 + a/2), for 0.75 <= a <= 10; max
// relative error 1.0e-9 in exact arithmetic (fit by scripts/fit-erf.py).
fn erfc_scaled(a: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * a);
  return 3.479425914e-6 + t * (0.2819870114 + t * (0.2835548222 + t * (0.2354576290
    + t * (0.2326097935 + t * (-0.1001859680 + t * (0.3920828998 + t * (-0.5950365663
    + t * (0.3412377834 + t * -0.07170617580))))))));
}

// Standard normal CDF, Phi(x) = erfc(-x / sqrt(2)) / 2. The far tails use
// erfc directly, so Phi keeps its relative accuracy for negative x: max
// relative error 4.4e-7 on [-13, 13] in simulated f32 (scripts/fit-erf.py).
// Below x = -14.1, Phi is under f32's smallest subnormal and returns 0.
fn normal_cdf(x: f32) -> f32 {
  let z = x * 0.70710678;
  let a = abs(z);
  if (a < 0.75) {
    return 0.5 + 0.5 * erf_small(z);
  }
  if (a > 10.0) {
    return select(1.0, 0.0, z < 0.0);
  }
  let half_erfc = 0.5 * gauss_half(x) * erfc_scaled(a);
  return select(1.0 - half_erfc, half_erfc, z < 0.0);
}

// GELU in PyTorch's default exact form, x Phi(x).
fn gelu(x: f32) -> f32 {
  return x * normal_cdf(x);
}

// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
fn gelu_grad(x: f32) -> f32 {
  return normal_cdf(x) + x * 0.39894228 * gauss_half(x);
}

// clamp to [low, high] as min(max(v, low), high), keeping NaN.
fn clamp_nan(v: f32, low: f32, high: f32) -> f32 {
  return select(min(max(v, low), high), v, is_nan(v));
}
