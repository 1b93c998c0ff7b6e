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
// integer and summed exactly in two u32 words per element, a low and a
// high word (kept in two planes of the accumulator): atomicAdd on the low word returns the old value, from which
// the carry out of the 32-bit addition follows, and high + carry is added
// to the high word (skipped when it is 0). The sums start at a bias of 2^31
// (warp_scatter_init.wgsl), so a sum near 0 rarely moves the low word
// across 0 or 2^32 and most additions need no high-word atomic.
// Integer addition is associative, so the sum is the same for every order.
// warp_fixed_to_float.wgsl turns the sums back into f32.
//
// Scale: max_bits[0] holds the f32 bits of M = max|g| (from
//   warp_scatter_init.wgsl) with biased exponent e, so 2^(e - 127) <= M <
//   2^(e - 126). A contribution v becomes round(v * 2^shift) with
//   shift = 156 - e, so |v| * 2^shift < 2^30 (at most 2^30 - 64 after
//   rounding to f32). The scale is a power of two, so multiplying by it is
//   exact. It is applied to g once per voxel and channel, as two factors
//   2^(shift / 2) and 2^(shift - shift / 2), because 2^shift itself may not
//   fit in an f32 (shift ranges from -98 to 156). A product that loses bits
//   in the first factor (a subnormal) is below half a grid step, so it
//   rounds to 0 either way.
// Error: rounding to the fixed-point grid (step 2^-shift <= 2^-29 * M)
//   changes each value sent by at most 2^-30 * M, so an element that
//   receives k contributions is off by at most k * 2^-30 * M, on top of the
//   f32 rounding of weight * g (and of the sum of a merged pair) and of the
//   final conversion (relative 2^-23).
// Overflow: |contribution| <= 2^30 and one output voxel adds to a given
//   element at most once per channel, so an element's sum is at most
//   D * H * W * 2^30 in magnitude. With the bias 2^31 that stays below 2^63
//   for any volume of fewer than 2^32 voxels (every volume that a u32 index
//   can address).
// Non-finite g: when M is infinite or NaN nothing is added, and the
//   conversion writes NaN to the whole image gradient.
// NOTE: a NaN in the flow gives NaN weights, whose conversion to i32 has
//   no defined value in WGSL, so the image gradient gets arbitrary finite
//   values there where a float scatter would give NaN.
//
// Merging: an invocation handles a run of RUN voxels along W. When the
//   cell of voxel w + 1 is the cell of w moved by one voxel along W, the
//   x0 corners of the one are the x1 corners of the other, so the two
//   contributions to each shared corner are added in f32 and rounded and
//   sent once. Which pairs merge depends only on the flow and the shapes,
//   so the result stays the same from run to run. A merged value is below
//   2 * (2^30 - 64), which rounds to at most 2^31 - 128 and fits an i32.
//
// Bindings: 1 upstream (read, f32) g [N, C, D, H, W]; 2 image (read, f32)
//   [N, C, D, H, W]; 3 flow (read, f32) [N, 3, D, H, W]; 4 max_bits (read,
//   u32, one element); 5 accumulator (read_write, atomic<u32>) the low
//   words of all image elements, then their high words, set to the bias by
//   warp_scatter_init.wgsl; 6 flow_grad (read_write, f32) [N, 3, D, H, W].
// Uniforms: runs = N * D * H * runs_per_row; runs_per_row =
//   ceil(W / RUN); channels = C; depth, height, width = D, H, W; plane =
//   D * H * W; elements = N * C * D * H * W (image elements).
// Constants: the placeholder WARP_CELL is the text of warp_cell.wgsl;
//   IMAGE_GRADIENT and FLOW_GRADIENT (true or false) select the gradients
//   computed, and bindings of a gradient that is not computed are not
//   accessed; RUN is the number of voxels per invocation.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of RUN voxels
//   of one row (the last run of a row may be shorter).
// Grid: ceil(runs / WORKGROUP_SIZE) workgroups, folded past 65,535.

const IMAGE_GRADIENT: bool = {{IMAGE_GRADIENT}};
const FLOW_GRADIENT: bool = {{FLOW_GRADIENT}};
const RUN: u32 = {{RUN}}u;
// Bits of +infinity: |g| bits at or above it are infinity or NaN.
const NON_FINITE_BITS: u32 = 0x7f800000u;

{{WARP_CELL}}

// Adds a fixed-point value to the 64-bit sum of image element `element`.
fn add_fixed(element: u32, value: i32) {
  if (value == 0) {
    return;
  }
  let low = bitcast<u32>(value);
  let old = atomicAdd(&accumulator[element], low);
  // The 32-bit addition wrapped exactly when the new low word is smaller.
  let carry = select(0u, 1u, old + low < old);
  // Sign extension of value into the high word, plus the carry.
  let high = select(0u, 0xffffffffu, value < 0) + carry;
  if (high != 0u) {
    atomicAdd(&accumulator[params.elements + element], high);
  }
}

// Adds the four values to their elements, except in the rows of `skip`.
fn scatter(indices: vec4<u32>, values: vec4<i32>, skip: vec4<bool>) {
  if (!skip.x) { add_fixed(indices.x, values.x); }
  if (!skip.y) { add_fixed(indices.y, values.y); }
  if (!skip.z) { add_fixed(indices.z, values.z); }
  if (!skip.w) { add_fixed(indices.w, values.w); }
}

// Derivatives of the row weights along z and y (row order), for the flow
// gradient.
struct Slopes {
  rows_dz: vec4<f32>,
  rows_dy: vec4<f32>,
}

fn slopes_of(point: Point) -> Slopes {
  let wz = lerp_weights(point.z);
  let wy = lerp_weights(point.y);
  let dz = point.z.inside * vec2<f32>(-1.0, 1.0);
  let dy = point.y.inside * vec2<f32>(-1.0, 1.0);
  return Slopes(outer_zy(dz, wy), outer_zy(wz, dy));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let index = global_index(wid, nwg, lid);
  if (index >= params.runs) {
    return;
  }
  let run = run_of(index, RUN);
  let plane = params.plane;
  let count = run.count;
  let s_first = run.s_first;
  let n = run.n;
  let item_base = n * params.channels * plane;

  var scatter_image = IMAGE_GRADIENT;
  var scale_first = 1.0;
  var scale_second = 1.0;
  if (IMAGE_GRADIENT) {
    let bits = max_bits[0];
    scatter_image = bits < NON_FINITE_BITS;
    let shift = 156 - i32(bits >> 23u);
    scale_first = ldexp(1.0, shift / 2);
    scale_second = ldexp(1.0, shift - shift / 2);
  }

  var point = point_of(run, 0u);
  var cell = cell_of(point);
  // Rows whose x0 corner was merged into the previous voxel's x1 corner.
  var merged_before = vec4<bool>(false);
  for (var k = 0u; k < count; k++) {
    let s = s_first + k;
    let has_next = k + 1u < count;
    var next_point = point;
    var next_cell = cell;
    var merge_next = vec4<bool>(false);
    if (has_next) {
      next_point = point_of(run, k + 1u);
      next_cell = cell_of(next_point);
      merge_next = cell.index_x1 == next_cell.index_x0;
    }
    let slopes = slopes_of(point);
    let weight_x0 = cell.rows * cell.sides.x;
    let weight_x1 = cell.rows * cell.sides.y;
    let next_weight_x0 = next_cell.rows * next_cell.sides.x;
    let side_dx = vec2<f32>(-point.x.inside.x, point.x.inside.y);

    var gradient = vec3<f32>(0.0);
    var base = item_base;
    for (var c = 0u; c < params.channels; c++) {
      let g = upstream[base + s];
      let i0 = cell.index_x0 + vec4<u32>(base);
      let i1 = cell.index_x1 + vec4<u32>(base);
      if (FLOW_GRADIENT) {
        let values_x0 = vec4<f32>(image[i0.x], image[i0.y], image[i0.z], image[i0.w]);
        let values_x1 = vec4<f32>(image[i1.x], image[i1.y], image[i1.z], image[i1.w]);
        let along_x = cell.sides.x * values_x0 + cell.sides.y * values_x1;
        let slope = vec3<f32>(
          dot(slopes.rows_dz, along_x),
          dot(slopes.rows_dy, along_x),
          dot(cell.rows, side_dx.x * values_x0 + side_dx.y * values_x1),
        );
        gradient += g * slope;
      }
      if (scatter_image) {
        var g_next = 0.0;
        if (has_next) {
          g_next = upstream[base + s + 1u];
        }
        // g times the scale: weights * g_scaled is weights * g (rounded to
        // f32) times 2^shift exactly.
        let g_scaled = g * scale_first * scale_second;
        let g_next_scaled = g_next * scale_first * scale_second;
        let next_x0 = select(vec4<f32>(0.0), next_weight_x0 * g_next_scaled, merge_next);
        let values_x0 = vec4<i32>(round(weight_x0 * g_scaled));
        let values_x1 = vec4<i32>(round(weight_x1 * g_scaled + next_x0));
        scatter(i0, values_x0, merged_before);
        scatter(i1, values_x1, vec4<bool>(false));
      }
      base += plane;
    }
    if (FLOW_GRADIENT) {
      let flow_base = 3u * n * plane + s;
      flow_grad[flow_base] = gradient.x;
      flow_grad[flow_base + plane] = gradient.y;
      flow_grad[flow_base + 2u * plane] = gradient.z;
    }
    point = next_point;
    cell = next_cell;
    merged_before = merge_next;
  }
}
