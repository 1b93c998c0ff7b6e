// Bit-level conversions between float32 and the 16-bit float formats.
//
// They work on bit patterns (numbers holding uint16 or uint32 bits), never on
// JS doubles, so NaN payloads survive a float16 -> float32 -> float16 round
// trip unchanged. Widening is always exact; narrowing rounds to nearest even.

/** Widens IEEE 754 binary16 bits to binary32 bits (exact). */
export function float16BitsToFloat32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >>> 10) & 0x1f;
  let mantissa = half & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent === 0) {
    if (mantissa === 0) return sign >>> 0;
    // Subnormal half: shift the mantissa up until its leading 1 becomes the
    // implicit bit of a normal float32.
    let unbiased = -14;
    while ((mantissa & 0x400) === 0) {
      mantissa <<= 1;
      unbiased -= 1;
    }
    mantissa &= 0x3ff;
    return (sign | ((unbiased + 127) << 23) | (mantissa << 13)) >>> 0;
  }
  return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
}

/**
 * Narrows binary32 bits to binary16 bits, rounding to nearest even. Values
 * past the half range become infinity; NaN keeps the top 10 payload bits.
 */
export function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    if (mantissa === 0) return sign | 0x7c00;
    const payload = mantissa >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // The result is a half subnormal: count units of 2^-24. The float32
    // value is (mantissa | 2^23) * 2^(exponent - 150), so the count is that
    // 24-bit significand shifted right by 14 - halfExponent.
    const shift = 14 - halfExponent;
    if (shift > 24) return sign;
    return sign | roundShift(mantissa | 0x800000, shift);
  }
  // A carry out of the mantissa moves into the exponent, which is correct,
  // up to infinity.
  const truncated = (halfExponent << 10) | (mantissa >>> 13);
  return sign | (truncated + roundingCarry(mantissa, 13, truncated));
}

/** Widens bfloat16 bits to binary32 bits (exact). */
export function bfloat16BitsToFloat32Bits(brain: number): number {
  return (brain << 16) >>> 0;
}

/**
 * Narrows binary32 bits to bfloat16 bits, rounding to nearest even. NaN stays
 * NaN; a NaN whose payload lies only in the dropped bits becomes quiet.
 */
export function float32BitsToBfloat16Bits(bits: number): number {
  const upper = bits >>> 16;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
    return (upper & 0x7f) === 0 ? upper | 0x40 : upper;
  }
  return upper + roundingCarry(bits, 16, upper);
}

function roundShift(value: number, shift: number): number {
  const truncated = value >>> shift;
  return truncated + roundingCarry(value, shift, truncated);
}

// 1 when dropping the low `shift` bits of value should round the truncated
// result up: above half, or exactly half with an odd result.
function roundingCarry(
  value: number,
  shift: number,
  truncated: number,
): number {
  const dropped = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (dropped > half) return 1;
  if (dropped === half && (truncated & 1) === 1) return 1;
  return 0;
}
