// Weight gradient of a 3D convolution by row segments, in partial sums over
// chunks of rows:
//   partial[chunk, cg, cx, tap] = sum over rows r of the chunk and columns ow
//     of g[n, cg, od, oh, ow] * x[n, cx, od*sd + kd*dd - pd,
//                                 oh*sh + kh*dh - ph, ow*sw + kw*dw - pw]
// where a row r is one (n, od, oh) of g and tap = (kd, kh, kw), with x read
// as 0 outside the volume. Summing partial over its first axis (a separate,
// fixed-order reduction) gives the gradient [Cg, Cx, kD, kH, kW]: conv3d's
// weight layout when g is the output gradient and x the input.
// conv_transpose3d's weight gradient is the same sum with the roles of the
// two tensors exchanged.
//
// Layout: x [N, Cx, D, H, W], g [N, Cg, OD, OH, OW], row-major f32.
//
// Invocation index = (chunk * g_quads + gq) * lanes + lane: each
// invocation takes one chunk of rows, 4 channels of g from 4 gq, and
// X_PER_LANE channels of x from cx_first and one (kd, kh), with lane =
// (cx_first / X_PER_LANE * kD + kd) * kH + kh, and all KERNEL_W taps along
// W. It walks the rows of its chunk 4 columns at a time: the 4 columns are
// the lanes of its vec4 accumulators (4 x X_PER_LANE x KERNEL_W of them).
// Per step it loads the 4 values of each g channel, used for every x
// channel and tap, and the segment of each x row that the taps reach from
// the 4 columns, keeping the vec4s the next step shares in registers. The
// lanes are added, (x + y) + (z + w), before the store. Channels past the
// end of g or x are read from the last channel and not stored.
//
// x and g are bound as vec4<f32> arrays, so W and OW must be multiples of
// 4 (conv3d_weight_grad takes the other cases). The x segment is read as
// aligned vec4s starting (-pad_w) mod 4 columns before the first input
// column; a vec4 lies either inside the row or wholly in the padding, which
// reads as 0.
//
// Bindings: 1 x (read, vec4<f32>), 2 g (read, vec4<f32>), 3 partial
//   (read_write, f32) of shape [chunks, Cg, Cx, taps].
// Uniforms: total = chunks * g_quads * lanes invocations; lanes =
//   ceil(Cx / X_PER_LANE) * kD * kH; g_quads = ceil(Cg / 4);
//   rows_per_chunk; sizes; strides, padding and dilation of D and H; pad_w.
// Constants: KERNEL_W, STRIDE_W, X_PER_LANE; the generated code LOAD_FN
//   (loads of g, and of x reading 0 outside a row), CHANNELS (the x
//   channels of the invocation), ACC_DECL, ROW_START (the loads before the
//   first step of a row), ROW_LOADS, ACC_GUARD (the accumulation),
//   ROW_SHIFT (the vec4s kept for the next step) and ACC_STORE.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded into 2D or 3D past 65,535.
//
// Shared form, which conv3d_weight_grad_rows.ts picks where the device has
// subgroups and the lanes fit in 256: one workgroup per (chunk, gq), with
// WORKGROUP_SIZE = lanes rounded up to a multiple of 4. So every
// invocation of a subgroup reads the same 4 g values per step. Each lane
// loads channel sid % 4 only, and subgroupBroadcast hands the values of
// lanes 0 to 3 to all: one g load per lane and step instead of four. The
// broadcasts need uniform control flow, so rows outside x are skipped by a
// condition around the accumulation instead of a `continue`. The chunks
// and the order of the sums are the plain form's, and so are the bits.
// Lanes past `lanes` compute on the last x channel and store nothing. The
// generated code INVOCATION (lane, gq and chunk of the invocation),
// SUBGROUP_ID, ENABLE, ROW_SKIP, G_LOADS and ACC_GUARD differ between the
// two forms; total counts the padded lanes.

{{ENABLE}}

const KERNEL_W: u32 = {{KERNEL_W}}u;
const STRIDE_W: u32 = {{STRIDE_W}}u;
const X_PER_LANE: u32 = {{X_PER_LANE}}u;

{{LOAD_FN}}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32{{SUBGROUP_ID}}) {
  {{INVOCATION}}
  let kh = lane % params.kernel_h;
  let kd = (lane / params.kernel_h) % params.kernel_d;
  let cx_first = lane / (params.kernel_h * params.kernel_d) * X_PER_LANE;
  {{CHANNELS}}

  let g_plane = params.g_depth * params.g_height * params.g_width;
  let x_plane = params.x_depth * params.x_height * params.x_width;
  let last_g = params.g_channels - 1u;
  let g_offset0 = min(gq * 4u, last_g) * g_plane;
  let g_offset1 = min(gq * 4u + 1u, last_g) * g_plane;
  let g_offset2 = min(gq * 4u + 2u, last_g) * g_plane;
  let g_offset3 = min(gq * 4u + 3u, last_g) * g_plane;

  {{ACC_DECL}}
  let rows = params.batch * params.g_depth * params.g_height;
  let row_end = min(rows, (chunk + 1u) * params.rows_per_chunk);
  let steps = (params.g_width + 3u) / 4u;
  for (var r = chunk * params.rows_per_chunk; r < row_end; r++) {
    let oh = r % params.g_height;
    let od = (r / params.g_height) % params.g_depth;
    let n = r / (params.g_height * params.g_depth);
    let id = i32(od * params.stride_d + kd * params.dilation_d) - i32(params.pad_d);
    let ih = i32(oh * params.stride_h + kh * params.dilation_h) - i32(params.pad_h);
    let inside = id >= 0 && id < i32(params.x_depth) && ih >= 0 && ih < i32(params.x_height);
    {{ROW_SKIP}}
    let g_row = n * params.g_channels * g_plane + (od * params.g_height + oh) * params.g_width;
    let batch_plane = n * params.x_channels;
    // Clamped, so that a row skipped by ACC_GUARD still loads inside x.
    let x_row = u32(clamp(id, 0, i32(params.x_depth) - 1)) * params.x_height
      + u32(clamp(ih, 0, i32(params.x_height) - 1));
    let row_offset = x_row * params.x_width;
    {{ROW_START}}
    for (var t = 0u; t < steps; t++) {
      let ow0 = t * 4u;
      // Input column of tap 0 for output column ow0.
      let iw_first = i32(ow0 * STRIDE_W) - i32(params.pad_w);
      {{G_LOADS}}
      {{ROW_LOADS}}
      {{ACC_GUARD}}
      {{ROW_SHIFT}}
    }
  }
  // partial[chunk, cg, cx, tap]
  let taps = params.kernel_d * params.kernel_h * KERNEL_W;
  let first = chunk * params.g_channels * params.x_channels * taps
    + (kd * params.kernel_h + kh) * KERNEL_W;
  {{ACC_STORE}}
}
