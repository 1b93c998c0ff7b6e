// Converts the 64-bit fixed-point sums of warp_backward.wgsl into f32:
// out[i] = (high * 2^32 + low - 2^31) * 2^-shift, with (low, high) the two's
// complement words of element i, 2^31 the bias set by
// warp_scatter_init.wgsl, and shift = 156 - e from the biased exponent e of
// max|g| (see warp_backward.wgsl). Writes NaN everywhere when max|g| is
// infinite or NaN.
//
// Bindings: 1 accumulator (read, u32) the low words of all elements, then
//   their high words; 2 max_bits (read, u32, one element); 3 out
//   (read_write, f32).
// Uniforms: size = elements of out.
// Constants: RUN is the number of consecutive elements per invocation
//   (long runs on CPU adapters, 1 on GPUs; see kernels/runs.ts).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (RUN *
//   WORKGROUP_SIZE)) workgroups, folded past 65,535.

const NON_FINITE_BITS: u32 = 0x7f800000u;
const BIAS: u32 = 0x80000000u;
// Sign and exponent bits of a NaN plus the quiet bit.
const QUIET_NAN_BITS: u32 = 0x7fc00000u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let bits = max_bits[0];
  let first = global_index(wid, nwg, lid) * {{RUN}}u;
  let last = min(first + {{RUN}}u, params.size);
  if (bits >= NON_FINITE_BITS) {
    // Built from the run-time bits: a constant NaN is a shader-creation error.
    let nan = bitcast<f32>(bits | QUIET_NAN_BITS);
    for (var i = first; i < last; i++) {
      out[i] = nan;
    }
    return;
  }
  let shift = 156 - i32(bits >> 23u);
  let half = shift / 2;
  for (var i = first; i < last; i++) {
    // Remove the bias 2^31, borrowing from the high word.
    let biased_low = accumulator[i];
    let low = biased_low - BIAS;
    let high = accumulator[params.size + i] - select(0u, 1u, biased_low < BIAS);
    let negative = (high >> 31u) == 1u;
    // Magnitude of the two's complement value: invert and add one.
    var magnitude_low = low;
    var magnitude_high = high;
    if (negative) {
      magnitude_low = ~low + 1u;
      magnitude_high = ~high + select(0u, 1u, magnitude_low == 0u);
    }
    // Two roundings to f32 (relative 2^-24 each); the factor 2^32 is exact.
    let magnitude = f32(magnitude_high) * 4294967296.0 + f32(magnitude_low);
    let value = ldexp(ldexp(magnitude, -half), half - shift);
    out[i] = select(value, -value, negative);
  }
}
