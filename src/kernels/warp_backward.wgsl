// Trilinear warp, backward: the gradients to the flow (a gather) and to the
// image (a scatter) from the upstream gradient g of warp_linear.wgsl's
// output, in one pass over the output voxels.
//
// Flow gradient, at output voxel p: for each axis a of (D, H, W),
//   flow_grad[n, a, p] = sum over c of g[n, c, p] * d out[n, c, p] / d p_a,
// where the derivative of the trilinear weights along a is (-1, +1) for
// the (lower, upper) corner of that axis, masked to the inside. At an
// integer coordinate the cell is the one above it (floor), so the result
// is the one-sided derivative from the right, as grid_sample's backward.
//
// Image gradient: each output voxel adds weight(q) * g[n, c, p] to every
// corner q of its cell. Many voxels may add to one image element, so the
// adds use atomics. To make the result independent of their order without
// float atomics, every contribution is rounded to a 64-bit fixed-point
// integer and summed exactly in two u32 words per element (low word, then
// high word): atomicAdd on the low word returns the old value, from which
// the carry out of the 32-bit addition follows, and high + carry is added
// to the high word (skipped when it is 0, as it is for most additions).
// Integer addition is associative, so the sum is the same for every order.
// warp_fixed_to_float.wgsl turns the sums back into f32.
//
// Scale: max_bits[0] holds the f32 bits of M = max|g| (warp_abs_max.wgsl),
//   with biased exponent e, so 2^(e - 127) <= M < 2^(e - 126). A
//   contribution v becomes round(v * 2^shift) with shift = 156 - e, so
//   |v| * 2^shift < 2^30. The scale is a power of two, so multiplying by
//   it is exact; ldexp is applied in two halves because one ldexp may not
//   take an exponent above 128.
// Error: rounding to the fixed-point grid (step 2^-shift <= 2^-29 * M)
//   changes a contribution by at most 2^-30 * M, so an element that
//   receives k contributions is off by at most k * 2^-30 * M, on top of the
//   f32 rounding of weight * g and of the final conversion (relative
//   2^-23).
// Overflow: |contribution| <= 2^30 and one output voxel adds to a given
//   element at most once per channel, so an element's sum is at most
//   D * H * W * 2^30 in magnitude, below 2^63 for any volume of fewer than
//   2^33 voxels (every volume a u32 index can address).
// Non-finite g: when M is infinite or NaN nothing is added, and the
//   conversion writes NaN to the whole image gradient.
//
// Bindings: 1 upstream (read, f32) g [N, C, D, H, W]; 2 image (read, f32)
//   [N, C, D, H, W]; 3 flow (read, f32) [N, 3, D, H, W]; 4 max_bits (read,
//   u32, one element); 5 accumulator (read_write, atomic<u32>) 2 words per
//   image element, (low, high), cleared to 0 before the launch; 6
//   flow_grad (read_write, f32) [N, 3, D, H, W].
// Uniforms: voxels = N * D * H * W; channels = C; depth, height, width =
//   D, H, W; plane = D * H * W.
// Constants: the placeholder WARP_CELL is the text of warp_cell.wgsl;
//   IMAGE_GRADIENT and FLOW_GRADIENT (true or false) select the
//   gradients computed. Bindings of a gradient that is not computed are
//   not accessed.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per output voxel.
// Grid: ceil(voxels / WORKGROUP_SIZE) workgroups, folded past 65,535.

const IMAGE_GRADIENT: bool = {{IMAGE_GRADIENT}};
const FLOW_GRADIENT: bool = {{FLOW_GRADIENT}};
// Bits of +infinity: |g| bits at or above it are infinity or NaN.
const NON_FINITE_BITS: u32 = 0x7f800000u;

{{WARP_CELL}}

fn to_fixed(value: f32, shift: i32) -> i32 {
  let half = shift / 2;
  return i32(round(ldexp(ldexp(value, half), shift - half)));
}

// Adds a fixed-point value to the 64-bit sum of image element `element`.
fn add_fixed(element: u32, value: i32) {
  if (value == 0) {
    return;
  }
  let low = bitcast<u32>(value);
  let old = atomicAdd(&accumulator[2u * element], low);
  // The 32-bit addition wrapped exactly when the new low word is smaller.
  let carry = select(0u, 1u, old + low < old);
  // Sign extension of value into the high word, plus the carry.
  let high = select(0u, 0xffffffffu, value < 0) + carry;
  if (high != 0u) {
    atomicAdd(&accumulator[2u * element + 1u], high);
  }
}

fn scatter(indices: vec4<u32>, contributions: vec4<f32>, shift: i32) {
  add_fixed(indices.x, to_fixed(contributions.x, shift));
  add_fixed(indices.y, to_fixed(contributions.y, shift));
  add_fixed(indices.z, to_fixed(contributions.z, shift));
  add_fixed(indices.w, to_fixed(contributions.w, shift));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.voxels) {
    return;
  }
  let plane = params.plane;
  let n = i / plane;
  let s = i - n * plane;
  let point = point_of(n, s);
  let cell = cell_of(point);

  // Derivatives of the corner weights along each axis, in corner order.
  let wz = lerp_weights(point.z);
  let wy = lerp_weights(point.y);
  let wx = lerp_weights(point.x);
  let yx_dz = outer_yx(wy, wx);
  let dz = point.z.inside * vec2<f32>(-1.0, 1.0);
  let yx_dy = outer_yx(point.y.inside * vec2<f32>(-1.0, 1.0), wx);
  let yx_dx = outer_yx(wy, point.x.inside * vec2<f32>(-1.0, 1.0));

  var scatter_image = IMAGE_GRADIENT;
  var shift = 0;
  if (IMAGE_GRADIENT) {
    let bits = max_bits[0];
    scatter_image = bits < NON_FINITE_BITS;
    shift = 156 - i32(bits >> 23u);
  }

  var gradient = vec3<f32>(0.0);
  var base = n * params.channels * plane;
  for (var c = 0u; c < params.channels; c++) {
    let g = upstream[base + s];
    let lo = cell.index_lo + vec4<u32>(base);
    let hi = cell.index_hi + vec4<u32>(base);
    if (FLOW_GRADIENT) {
      let values_lo = vec4<f32>(image[lo.x], image[lo.y], image[lo.z], image[lo.w]);
      let values_hi = vec4<f32>(image[hi.x], image[hi.y], image[hi.z], image[hi.w]);
      let slope = vec3<f32>(
        dz.x * dot(yx_dz, values_lo) + dz.y * dot(yx_dz, values_hi),
        wz.x * dot(yx_dy, values_lo) + wz.y * dot(yx_dy, values_hi),
        wz.x * dot(yx_dx, values_lo) + wz.y * dot(yx_dx, values_hi),
      );
      gradient += g * slope;
    }
    if (scatter_image && g != 0.0) {
      scatter(lo, cell.weight_lo * g, shift);
      scatter(hi, cell.weight_hi * g, shift);
    }
    base += plane;
  }
  if (FLOW_GRADIENT) {
    let flow_base = 3u * n * plane + s;
    flow_grad[flow_base] = gradient.x;
    flow_grad[flow_base + plane] = gradient.y;
    flow_grad[flow_base + 2u * plane] = gradient.z;
  }
}
