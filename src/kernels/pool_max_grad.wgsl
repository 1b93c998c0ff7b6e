// max_pool3d, backward: each input gathers the upstream gradient of the
// outputs whose argmax it is, so no two invocations write one element and
// no atomics are needed; the sum runs in a fixed order, so results repeat
// bitwise.
//
// Layout: grad is [N, C, D, H, W] f32 read as [volumes, D, H, W];
// upstream and indices are [volumes, out_depth, out_height, out_width]
// (indices from pool_max). Along one axis, input i lies in the window of
// output o when o * stride - padding <= i <= o * stride - padding +
// kernel - 1, that is for o from ceil((i + padding - kernel + 1) /
// stride) to floor((i + padding) / stride), clipped to the output: at
// most ceil(kernel / stride) outputs per axis. Each of those outputs
// whose index equals this input's flat index adds its upstream value.
//
// Bindings: 1 upstream (read, f32), 2 indices (read, u32), 3 grad
//   (read_write, f32).
// Uniforms: total = volumes * depth * height * width; the geometry of
//   pool_max.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per input; neighbours
//   take neighbouring w. Grid: ceil(total / WORKGROUP_SIZE), folded past
//   65,535.

// Outputs along one axis whose window covers input i, as [first, end).
fn covering(i: u32, kernel: u32, stride: u32, padding: u32, extent: u32) -> vec2<u32> {
  let low = i32(i + padding) - i32(kernel) + 1;
  var first = 0u;
  if (low > 0) {
    first = (u32(low) + stride - 1u) / stride;
  }
  let end = min((i + padding) / stride + 1u, extent);
  return vec2<u32>(first, max(end, first));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = global_index(wid, nwg, lid);
  if (i >= params.total) {
    return;
  }
  let ix = i % params.width;
  let iy = (i / params.width) % params.height;
  let iz = (i / (params.width * params.height)) % params.depth;
  let volume = i / (params.width * params.height * params.depth);
  let flat = (iz * params.height + iy) * params.width + ix;
  let zs = covering(iz, params.kernel_depth, params.stride_depth, params.padding_depth,
                    params.out_depth);
  let ys = covering(iy, params.kernel_height, params.stride_height, params.padding_height,
                    params.out_height);
  let xs = covering(ix, params.kernel_width, params.stride_width, params.padding_width,
                    params.out_width);
  let out_base = volume * params.out_depth * params.out_height * params.out_width;

  var total = 0.0;
  for (var z = zs.x; z < zs.y; z++) {
    for (var y = ys.x; y < ys.y; y++) {
      let row = out_base + (z * params.out_height + y) * params.out_width;
      for (var x = xs.x; x < xs.y; x++) {
        if (indices[row + x] == flat) {
          total += upstream[row + x];
        }
      }
    }
  }
  grad[i] = total;
}
