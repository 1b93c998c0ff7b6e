// Weight gradient of a 3D convolution, in partial sums over chunks of rows:
//   partial[chunk, cg, cx, tap] = sum over rows r of the chunk and columns ow
//     of g[n, cg, od, oh, ow] * x[n, cx, od*sd + kd*dd - pd,
//                                 oh*sh + kh*dh - ph, ow*sw + kw*dw - pw]
// where a row r is one (n, od, oh) of g and tap = (kd, kh, kw). Summing
// partial over its first axis (a separate, fixed-order reduction) gives the
// gradient [Cg, Cx, kD, kH, kW]: conv3d's weight layout when g is the
// output gradient and x the input. conv_transpose3d's weight gradient is the
// same sum with the roles of the two tensors exchanged.
//
// Layout: x [N, Cx, D, H, W], g [N, Cg, OD, OH, OW], row-major f32.
// Bindings: 1 x (read, f32), 2 g (read, f32), 3 partial (read_write, f32)
//   of shape [chunks, Cg, Cx, taps].
// Uniforms: total = chunks * taps * g_quads * x_quads invocations;
//   rows_per_chunk; sizes, strides, padding, dilation.
// Each invocation computes a 4 x 4 block (4 channels of g, 4 of x) of one
// tap over one chunk, in four vec4 accumulators. Channels past the end are
// read from the last channel and not stored, which keeps the loop
// branch-free.
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(total / WORKGROUP_SIZE)
//   workgroups, folded into 2D or 3D past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let index = global_index(wid, nwg, lid);
  if (index >= params.total) {
    return;
  }
  let taps = params.kernel_d * params.kernel_h * params.kernel_w;
  let x_quads = (params.x_channels + 3u) / 4u;
  let g_quads = (params.g_channels + 3u) / 4u;
  let xq = index % x_quads;
  var rest = index / x_quads;
  let gq = rest % g_quads;
  rest = rest / g_quads;
  let tap = rest % taps;
  let chunk = rest / taps;
  let kw = tap % params.kernel_w;
  let kh = (tap / params.kernel_w) % params.kernel_h;
  let kd = tap / (params.kernel_w * params.kernel_h);

  let g_plane = params.g_depth * params.g_height * params.g_width;
  let x_plane = params.x_depth * params.x_height * params.x_width;
  let last_g = params.g_channels - 1u;
  let last_x = params.x_channels - 1u;
  let g0 = min(gq * 4u, last_g);
  let g1 = min(gq * 4u + 1u, last_g);
  let g2 = min(gq * 4u + 2u, last_g);
  let g3 = min(gq * 4u + 3u, last_g);
  let x0 = min(xq * 4u, last_x);
  let x1 = min(xq * 4u + 1u, last_x);
  let x2 = min(xq * 4u + 2u, last_x);
  let x3 = min(xq * 4u + 3u, last_x);

  // Columns ow whose input column ow*sw + kw*dw - pw lies inside [0, W).
  let shift = i32(kw * params.dilation_w) - i32(params.pad_w);
  let sw = i32(params.stride_w);
  let low = max(0, (-shift + sw - 1) / sw);
  // Integer division truncates toward zero, so a negative span is handled apart.
  let span = i32(params.x_width) - 1 - shift;
  let high = select(-1, min(i32(params.g_width) - 1, span / sw), span >= 0);

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  let rows = params.batch * params.g_depth * params.g_height;
  let row_end = min(rows, (chunk + 1u) * params.rows_per_chunk);
  for (var r = chunk * params.rows_per_chunk; r < row_end; r++) {
    let oh = r % params.g_height;
    let od = (r / params.g_height) % params.g_depth;
    let n = r / (params.g_height * params.g_depth);
    let id = i32(od * params.stride_d + kd * params.dilation_d) - i32(params.pad_d);
    let ih = i32(oh * params.stride_h + kh * params.dilation_h) - i32(params.pad_h);
    if (id < 0 || id >= i32(params.x_depth) || ih < 0 || ih >= i32(params.x_height)) {
      continue;
    }
    let g_row = n * params.g_channels * g_plane + (od * params.g_height + oh) * params.g_width;
    let x_row = n * params.x_channels * x_plane
      + (u32(id) * params.x_height + u32(ih)) * params.x_width;
    for (var ow = low; ow <= high; ow++) {
      let gi = g_row + u32(ow);
      let xi = x_row + u32(ow * sw + shift);
      let gv = vec4<f32>(g[gi + g0 * g_plane], g[gi + g1 * g_plane],
                         g[gi + g2 * g_plane], g[gi + g3 * g_plane]);
      acc0 = fma(gv, vec4<f32>(x[xi + x0 * x_plane]), acc0);
      acc1 = fma(gv, vec4<f32>(x[xi + x1 * x_plane]), acc1);
      acc2 = fma(gv, vec4<f32>(x[xi + x2 * x_plane]), acc2);
      acc3 = fma(gv, vec4<f32>(x[xi + x3 * x_plane]), acc3);
    }
  }
  // partial[chunk, cg, cx, tap]
  let chunk_base = chunk * params.g_channels * params.x_channels * taps;
  for (var a = 0u; a < 4u; a++) {
    let cg = gq * 4u + a;
    if (cg >= params.g_channels) {
      break;
    }
    let base = chunk_base + cg * params.x_channels * taps + tap;
    let cx = xq * 4u;
    if (cx < params.x_channels) {
      partial[base + cx * taps] = acc0[a];
    }
    if (cx + 1u < params.x_channels) {
      partial[base + (cx + 1u) * taps] = acc1[a];
    }
    if (cx + 2u < params.x_channels) {
      partial[base + (cx + 2u) * taps] = acc2[a];
    }
    if (cx + 3u < params.x_channels) {
      partial[base + (cx + 3u) * taps] = acc3[a];
    }
  }
}
