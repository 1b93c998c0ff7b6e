// avg_pool3d, backward: each input gathers upstream / divisor from every
// output whose window covers it, so no two invocations write one element
// and no atomics are needed; the sum runs in a fixed order, so results
// repeat bitwise.
//
// Layout: grad is [N, C, D, H, W] f32 read as [volumes, D, H, W];
// upstream is [volumes, out_depth, out_height, out_width]. The covering
// outputs along one axis are those of pool_max_grad (at most
// ceil(kernel / stride) of them), and each output's divisor is recomputed
// as pool_avg computes it.
//
// Bindings: 1 upstream (read, f32), 2 grad (read_write, f32).
// Uniforms: total = volumes * depth * height * width; the geometry of
//   pool_avg, count_include_pad included.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per input; neighbours
//   take neighbouring w. Grid: ceil(total / WORKGROUP_SIZE), folded past
//   65,535.

fn covering(i: u32, kernel: u32, stride: u32, padding: u32, extent: u32) -> vec2<u32> {
  let low = i32(i + padding) - i32(kernel) + 1;
  var first = 0u;
  if (low > 0) {
    first = (u32(low) + stride - 1u) / stride;
  }
  let end = min((i + padding) / stride + 1u, extent);
  return vec2<u32>(first, max(end, first));
}

// Inputs inside the volume covered by window o along one axis.
fn inside(o: u32, kernel: u32, stride: u32, padding: u32, extent: u32) -> u32 {
  let start = i32(o * stride) - i32(padding);
  return u32(min(start + i32(kernel), i32(extent)) - max(start, 0));
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
  let zs = covering(iz, params.kernel_depth, params.stride_depth, params.padding_depth,
                    params.out_depth);
  let ys = covering(iy, params.kernel_height, params.stride_height, params.padding_height,
                    params.out_height);
  let xs = covering(ix, params.kernel_width, params.stride_width, params.padding_width,
                    params.out_width);
  let out_base = volume * params.out_depth * params.out_height * params.out_width;
  let full = f32(params.kernel_depth * params.kernel_height * params.kernel_width);
  let include_pad = params.count_include_pad == 1u;

  var total = 0.0;
  for (var z = zs.x; z < zs.y; z++) {
    let count_z = inside(z, params.kernel_depth, params.stride_depth, params.padding_depth,
                         params.depth);
    for (var y = ys.x; y < ys.y; y++) {
      let count_zy = count_z * inside(y, params.kernel_height, params.stride_height,
                                      params.padding_height, params.height);
      let row = out_base + (z * params.out_height + y) * params.out_width;
      for (var x = xs.x; x < xs.y; x++) {
        var divisor = full;
        if (!include_pad) {
          divisor = f32(count_zy * inside(x, params.kernel_width, params.stride_width,
                                          params.padding_width, params.width));
        }
        total += upstream[row + x] / divisor;
      }
    }
  }
  grad[i] = total;
}
