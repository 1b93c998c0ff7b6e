// Direct 3D convolution by row segments, PyTorch semantics
// (cross-correlation, zero padding):
//   out[n, co, od, oh, ow] = bias[co] + sum over ci, kd, kh, kw of
//     x[n, ci, od*sd + kd*dd - pd, oh*sh + kh*dh - ph, ow*sw + kw*dw - pw]
//       * weight[co, ci, kd, kh, kw]
// with x read as 0 outside the volume.
//
// Layout: x [N, Cin, D, H, W] and out [N, Cout, OD, OH, OW], row-major f32.
// The weight comes packed by conv3d_pack as vec4s of 4 output channels:
// packed[(ci * taps + tap) * out_quads + q] = weight[4q..4q+3, ci, tap],
// taps = kD * kH * KERNEL_W, zero past Cout.
//
// Each invocation computes 4 * QUADS output channels x BLOCK consecutive
// columns ow0 .. ow0 + BLOCK - 1, ow0 a multiple of BLOCK (a multiple of 4).
// For every input row (ci, kd, kh) it loads the segment of the row that
// the kernel's KERNEL_W taps reach from those columns once, into named
// registers, then runs all KERNEL_W taps on it: the columns are the four
// lanes of each vec4 accumulator and the weight of one output channel is
// splatted across them. On llvmpipe, which runs storage loads lane by lane,
// this needs far fewer loads than one load per tap and column.
//
// Two forms, chosen by conv3d_rows.ts:
// - vec4: x and out are bound as vec4<f32> arrays, which needs W and OW to
//   be multiples of 4. The segment is read as aligned vec4s starting
//   (-pad_w) mod 4 columns before the first input column (ow0 * STRIDE_W is
//   a multiple of 4); a vec4 lies either inside the row or wholly in the
//   padding, which reads as 0.
// - scalar: x and out are f32 arrays, the segment is read one column at a
//   time, and columns past OW are not stored.
// Both add the products of an output in the same order (ci, kd, kh, kw),
// so they give bitwise the same results.
//
// Bindings: 1 x (read, f32 or vec4<f32>), 2 weight (uniform
//   array<vec4<f32>, 4096> when the packed weight fits in it, else read,
//   vec4<f32>), 3 bias (read, f32; ignored unless has_bias), 4 out
//   (read_write, f32 or vec4<f32>).
// Uniforms: the geometry fields of conv3d.ts: spatial = OD * OH *
//   out_blocks_w invocations per output plane group; groups_per_plane =
//   ceil(spatial / WORKGROUP_SIZE); sizes, kernel size, stride, padding and
//   dilation per axis (kernel_w, stride_w and dilation_w are also compiled
//   in, and the constants are what the kernel reads); out_quads = ceil(Cout
//   / (4 QUADS)) * QUADS; out_blocks_w = ceil(OW / BLOCK); has_bias.
// Constants: QUADS, BLOCK, KERNEL_W, STRIDE_W; the generated code LOAD_FN
//   (load_column or load_quad, reading 0 outside the row), ACC_DECL,
//   ROW_LOADS (the segment, with the column offsets of dilation_w and
//   pad_w compiled in), ROW_TAPS and ACC_STORE. Named variables beat local
//   arrays indexed in loops on llvmpipe.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: N * out_quads / QUADS *
//   groups_per_plane workgroups, folded into 2D or 3D past 65,535.

const QUADS: u32 = {{QUADS}}u;
const BLOCK: u32 = {{BLOCK}}u;
const KERNEL_W: u32 = {{KERNEL_W}}u;
const STRIDE_W: u32 = {{STRIDE_W}}u;

{{LOAD_FN}}

fn bias_of(co: u32) -> f32 {
  if (params.has_bias == 0u) {
    return 0.0;
  }
  return bias[co];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // The output channel quads and the batch index come from the workgroup id,
  // so they are uniform across the workgroup: the compiler then loads each
  // weight once for all invocations instead of gathering it per invocation.
  let group = workgroup_linear(wid, nwg);
  let plane_group = group % params.groups_per_plane;
  let nq = group / params.groups_per_plane;
  let quad_groups = params.out_quads / QUADS;
  if (nq >= params.batch * quad_groups) {
    return;
  }
  let quad0 = (nq % quad_groups) * QUADS;
  let n = nq / quad_groups;
  let index = plane_group * WORKGROUP_SIZE + lid;
  if (index >= params.spatial) {
    return;
  }
  let block_w = index % params.out_blocks_w;
  let rest = index / params.out_blocks_w;
  let oh = rest % params.out_height;
  let od = rest / params.out_height;

  let ow0 = block_w * BLOCK;
  // Input column of tap 0 for output column ow0.
  let iw_first = i32(ow0 * STRIDE_W) - i32(params.pad_w);
  {{ACC_DECL}}
  for (var ci = 0u; ci < params.in_channels; ci++) {
    let plane = (n * params.in_channels + ci) * params.in_depth;
    for (var kd = 0u; kd < params.kernel_d; kd++) {
      let id = i32(od * params.stride_d + kd * params.dilation_d) - i32(params.pad_d);
      if (id < 0 || id >= i32(params.in_depth)) {
        continue;
      }
      for (var kh = 0u; kh < params.kernel_h; kh++) {
        let ih = i32(oh * params.stride_h + kh * params.dilation_h) - i32(params.pad_h);
        if (ih < 0 || ih >= i32(params.in_height)) {
          continue;
        }
        let row = ((plane + u32(id)) * params.in_height + u32(ih)) * params.in_width;
        let tap_row = ((ci * params.kernel_d + kd) * params.kernel_h + kh) * KERNEL_W;
        {{ROW_LOADS}}
        {{ROW_TAPS}}
      }
    }
  }
  let plane_size = params.out_depth * params.out_height * params.out_width;
  let out_row = (n * params.out_channels * params.out_depth + od) * params.out_height + oh;
  let first = out_row * params.out_width + ow0;
  {{ACC_STORE}}
}
