// avg_pool3d, forward: the mean of each window.
//
// Layout: x is [N, C, D, H, W] f32, contiguous, read as [volumes = N * C,
// D, H, W]; out is [volumes, out_depth, out_height, out_width]. Output
// (z, y, x) covers inputs z * stride_depth - padding_depth + a for a <
// kernel_depth (likewise along H and W); inputs outside the volume are
// zero padding. The divisor is kernel_depth * kernel_height * kernel_width
// when count_include_pad == 1 (PyTorch's default; without ceil_mode a
// window never reaches past the padding, so this is PyTorch's divisor
// too) and the number of inputs inside the volume otherwise.
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: total = volumes * out_depth * out_height * out_width; depth,
//   height, width; out_depth, out_height, out_width; kernel_depth,
//   kernel_height, kernel_width; stride_depth, stride_height,
//   stride_width; padding_depth, padding_height, padding_width;
//   count_include_pad.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per output; neighbours
//   take neighbouring w. Grid: ceil(total / WORKGROUP_SIZE), folded past
//   65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = global_index(wid, nwg, lid);
  if (o >= params.total) {
    return;
  }
  let ox = o % params.out_width;
  let oy = (o / params.out_width) % params.out_height;
  let oz = (o / (params.out_width * params.out_height)) % params.out_depth;
  let volume = o / (params.out_width * params.out_height * params.out_depth);
  let base = volume * params.depth * params.height * params.width;
  let z0 = i32(oz * params.stride_depth) - i32(params.padding_depth);
  let y0 = i32(oy * params.stride_height) - i32(params.padding_height);
  let x0 = i32(ox * params.stride_width) - i32(params.padding_width);
  let z_first = u32(max(z0, 0));
  let y_first = u32(max(y0, 0));
  let x_first = u32(max(x0, 0));
  let z_end = u32(min(z0 + i32(params.kernel_depth), i32(params.depth)));
  let y_end = u32(min(y0 + i32(params.kernel_height), i32(params.height)));
  let x_end = u32(min(x0 + i32(params.kernel_width), i32(params.width)));

  var total = 0.0;
  for (var z = z_first; z < z_end; z++) {
    for (var y = y_first; y < y_end; y++) {
      let row = base + (z * params.height + y) * params.width;
      for (var w = x_first; w < x_end; w++) {
        total += x[row + w];
      }
    }
  }
  var divisor = params.kernel_depth * params.kernel_height * params.kernel_width;
  if (params.count_include_pad == 0u) {
    divisor = (z_end - z_first) * (y_end - y_first) * (x_end - x_first);
  }
  out[o] = total / f32(divisor);
}
