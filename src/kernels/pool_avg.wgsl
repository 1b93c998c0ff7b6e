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
// Uniforms: total = volumes * out_depth * out_height * runs invocations;
//   runs = ceil(out_width / run_length); run_length = outputs along W per
//   invocation; depth, height, width; out_depth, out_height, out_width;
//   kernel_depth,
//   kernel_height, kernel_width; stride_depth, stride_height,
//   stride_width; padding_depth, padding_height, padding_width;
//   count_include_pad.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   outputs along W. Grid: ceil(total / WORKGROUP_SIZE), folded past
//   65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = global_index(wid, nwg, lid);
  if (t >= params.total) {
    return;
  }
  let row = t / params.runs;
  let x_begin = (t % params.runs) * params.run_length;
  let x_stop = min(x_begin + params.run_length, params.out_width);
  let oy = row % params.out_height;
  let oz = (row / params.out_height) % params.out_depth;
  let volume = row / (params.out_height * params.out_depth);
  let base = volume * params.depth * params.height * params.width;
  let z0 = i32(oz * params.stride_depth) - i32(params.padding_depth);
  let y0 = i32(oy * params.stride_height) - i32(params.padding_height);
  let z_first = u32(max(z0, 0));
  let y_first = u32(max(y0, 0));
  let z_end = u32(min(z0 + i32(params.kernel_depth), i32(params.depth)));
  let y_end = u32(min(y0 + i32(params.kernel_height), i32(params.height)));
  let full = params.kernel_depth * params.kernel_height * params.kernel_width;

  for (var ox = x_begin; ox < x_stop; ox++) {
    let x0 = i32(ox * params.stride_width) - i32(params.padding_width);
    let x_first = u32(max(x0, 0));
    let x_end = u32(min(x0 + i32(params.kernel_width), i32(params.width)));
    var total = 0.0;
    for (var z = z_first; z < z_end; z++) {
      for (var y = y_first; y < y_end; y++) {
        let line = base + (z * params.height + y) * params.width;
        for (var w = x_first; w < x_end; w++) {
          total += x[line + w];
        }
      }
    }
    var divisor = full;
    if (params.count_include_pad == 0u) {
      divisor = (z_end - z_first) * (y_end - y_first) * (x_end - x_first);
    }
    out[row * params.out_width + ox] = total / f32(divisor);
  }
}
