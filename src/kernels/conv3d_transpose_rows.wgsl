// Transposed 3D convolution as a gather by row segments, PyTorch
// semantics: the gradient of a strided conv3d with respect to its input,
// and conv_transpose3d's forward pass.
//   out[n, co, o] = bias[co] + sum over ci, k with i = (o + p - k*dil) / s
//     integral and inside the input of x[n, ci, i] * weight(ci, co, k)
// per axis (o, i, k are the depth, height and width coordinates). Every
// output element is computed by one invocation from the inputs that reach
// it: no atomics, and results are deterministic.
//
// Layout: x [N, Cin, ID, IH, IW] and out [N, Cout, OD, OH, OW], row-major
// f32. The weight comes packed by conv3d_pack as vec4s of 4 output channels:
// packed[(ci * taps + tap) * out_quads + q] = weight(ci, 4q..4q+3, tap).
//
// Each invocation computes 4 output channels x BLOCK consecutive columns
// ow0 .. ow0 + BLOCK - 1, where BLOCK is a multiple of 4 * STRIDE_W, so
// ow0 / STRIDE_W is a multiple of 4 and the column j of the block meets the
// same taps kw, at the same input offsets, in every block. The generated
// code stores that pattern: for each valid input row (ci, kd, kh) it loads
// the segment of the x row the block reaches once, then adds, for each
// term (the t-th tap of every column), a vec4 of per-column weights times
// a vec4 of per-column inputs to each channel's vec4 accumulators.
//
// Two forms, chosen by conv3d_transpose_rows.ts: the vec4 form (IW and OW
// multiples of 4) binds x and out as vec4<f32> arrays and reads the segment
// as aligned vec4s; the scalar form binds f32 arrays, reads one column at a
// time and stores no column past OW. Both read x as 0 outside the row.
//
// Bindings: 1 x (read, f32 or vec4<f32>), 2 weight (uniform
//   array<vec4<f32>, 4096> when the packed weight fits in it, else read,
//   vec4<f32>), 3 bias (read, f32; ignored unless has_bias), 4 out
//   (read_write, f32 or vec4<f32>).
// Uniforms: the geometry fields of conv3d.ts: spatial = OD * OH *
//   out_blocks_w invocations per output plane group; groups_per_plane =
//   ceil(spatial / WORKGROUP_SIZE); sizes, kernel size, stride, padding and
//   dilation per axis (the W taps are compiled in from kernel_w, stride_w,
//   pad_w and dilation_w); out_quads = ceil(Cout / 4); out_blocks_w =
//   ceil(OW / BLOCK); has_bias.
// Constants: BLOCK, KERNEL_W, STRIDE_W; the generated code LOAD_FN,
//   ACC_DECL, ROW_LOADS, ROW_TAPS and ACC_STORE.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: N * out_quads *
//   groups_per_plane workgroups, folded into 2D or 3D past 65,535.

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

// Input coordinate reached from output coordinate o through tap k, or -1.
fn source(o: u32, k: u32, stride: u32, pad: u32, dilation: u32, size: u32) -> i32 {
  let t = i32(o + pad) - i32(k * dilation);
  if (t < 0 || t % i32(stride) != 0) {
    return -1;
  }
  let i = t / i32(stride);
  if (i >= i32(size)) {
    return -1;
  }
  return i;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // The output channel quad and the batch index come from the workgroup id,
  // so they are uniform across the workgroup: the compiler then loads each
  // weight once for all invocations instead of gathering it per invocation.
  let group = workgroup_linear(wid, nwg);
  let plane_group = group % params.groups_per_plane;
  let nq = group / params.groups_per_plane;
  if (nq >= params.batch * params.out_quads) {
    return;
  }
  let quad0 = nq % params.out_quads;
  let n = nq / params.out_quads;
  let index = plane_group * WORKGROUP_SIZE + lid;
  if (index >= params.spatial) {
    return;
  }
  let block_w = index % params.out_blocks_w;
  let rest = index / params.out_blocks_w;
  let oh = rest % params.out_height;
  let od = rest / params.out_height;

  let ow0 = block_w * BLOCK;
  // Input column that offset 0 of the generated pattern refers to.
  let iw_first = i32(ow0 / STRIDE_W);
  {{ACC_DECL}}
  for (var ci = 0u; ci < params.in_channels; ci++) {
    let plane = (n * params.in_channels + ci) * params.in_depth;
    for (var kd = 0u; kd < params.kernel_d; kd++) {
      let id = source(od, kd, params.stride_d, params.pad_d, params.dilation_d, params.in_depth);
      if (id < 0) {
        continue;
      }
      for (var kh = 0u; kh < params.kernel_h; kh++) {
        let ih = source(oh, kh, params.stride_h, params.pad_h, params.dilation_h, params.in_height);
        if (ih < 0) {
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
