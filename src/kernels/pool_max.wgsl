// max_pool3d, forward: the maximum of each window and where it was found.
//
// Layout: x is [N, C, D, H, W] f32, contiguous, read as [volumes = N * C,
// D, H, W]; out and indices are [volumes, out_depth, out_height,
// out_width]. Output (z, y, x) covers inputs z * stride_depth -
// padding_depth + a for a < kernel_depth (likewise along H and W); inputs
// outside the volume are padding and never win. The window is scanned in
// order (D, then H, then W) and a value replaces the best only when it is
// greater, so ties go to the first index in window order, as in PyTorch.
// A NaN wins over every number and stays (PyTorch's CPU kernel does the
// same); NaN is tested through the bits because WGSL lets compilers assume
// finite floats. indices[o] is the argmax as a flat index d * H * W +
// h * W + w into its volume, PyTorch's return_indices convention, which
// pool_max_grad reads.
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32), 3 indices
//   (read_write, u32).
// Uniforms: total = volumes * out_depth * out_height * runs invocations;
//   runs = ceil(out_width / run_length); run_length = outputs along W per
//   invocation; depth, height, width; out_depth, out_height, out_width;
//   kernel_depth,
//   kernel_height, kernel_width; stride_depth, stride_height,
//   stride_width; padding_depth, padding_height, padding_width. Every
//   window holds at least one input, because the caller checks padding <=
//   kernel / 2.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   outputs along W (llvmpipe pays a fixed cost per invocation; GPUs take
//   run_length 1). Grid: ceil(total / WORKGROUP_SIZE), folded past 65,535.

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

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
  // Clip the window to the volume: the loops then visit inputs only.
  let z_first = u32(max(z0, 0));
  let y_first = u32(max(y0, 0));
  let z_end = u32(min(z0 + i32(params.kernel_depth), i32(params.depth)));
  let y_end = u32(min(y0 + i32(params.kernel_height), i32(params.height)));

  for (var ox = x_begin; ox < x_stop; ox++) {
    let x0 = i32(ox * params.stride_width) - i32(params.padding_width);
    let x_first = u32(max(x0, 0));
    let x_end = u32(min(x0 + i32(params.kernel_width), i32(params.width)));
    var best_index = (z_first * params.height + y_first) * params.width + x_first;
    var best = x[base + best_index];
    for (var z = z_first; z < z_end; z++) {
      for (var y = y_first; y < y_end; y++) {
        let line = (z * params.height + y) * params.width;
        for (var w = x_first; w < x_end; w++) {
          let v = x[base + line + w];
          if (!is_nan(best) && (v > best || is_nan(v))) {
            best = v;
            best_index = line + w;
          }
        }
      }
    }
    let o = row * params.out_width + ox;
    out[o] = best;
    indices[o] = best_index;
  }
}
