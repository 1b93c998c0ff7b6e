// upsample3d, mode 'linear' (PyTorch's trilinear), forward.
//
// Layout: x is [N, C, D, H, W] f32, contiguous, read as [volumes = N * C,
// D, H, W]; out is [volumes, out_depth, out_height, out_width].
// The coordinate rule lives in the per-axis tables that upsample.ts
// builds once per call: for output position o along an axis, the u32
// entries at taps_<axis> + 3 o are (first, second, bitcast weight), and
// the output reads (1 - weight) * x[first] + weight * x[second] along
// that axis (second == first at the last input). The trilinear value is
// the product of the three axes' blends, nested like PyTorch's kernel.
//
// Bindings: 1 x (read, f32), 2 table (read, u32), 3 out (read_write, f32).
// Uniforms: total = volumes * out_depth * out_height * runs invocations;
//   runs = ceil(out_width / run_length); run_length = outputs along W per
//   invocation; depth, height, width; out_depth, out_height, out_width;
//   taps_depth, taps_height, taps_width = offsets of each axis's taps in
//   the table.
// Workgroup: WORKGROUP_SIZE x 1 x 1, one invocation per run of run_length
//   outputs along W (llvmpipe pays a fixed cost per invocation; GPUs take
//   run_length 1). Grid: ceil(total / WORKGROUP_SIZE), folded past 65,535.

struct Tap {
  first: u32,
  second: u32,
  weight: f32,
}

fn tap(offset: u32, o: u32) -> Tap {
  let at = offset + 3u * o;
  return Tap(table[at], table[at + 1u], bitcast<f32>(table[at + 2u]));
}

// The values of the four rows starting at `rows` at one column.
fn column_values(rows: vec4<u32>, column: u32) -> vec4<f32> {
  return vec4<f32>(x[rows.x + column], x[rows.y + column], x[rows.z + column], x[rows.w + column]);
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
  let tz = tap(params.taps_depth, oz);
  let ty = tap(params.taps_height, oy);
  let base = volume * params.depth * params.height * params.width;
  let z0 = base + tz.first * params.height * params.width;
  let z1 = base + tz.second * params.height * params.width;
  // The four input rows this output row blends.
  let r00 = z0 + ty.first * params.width;
  let r01 = z0 + ty.second * params.width;
  let r10 = z1 + ty.first * params.width;
  let r11 = z1 + ty.second * params.width;
  let wy1 = ty.weight;
  let wy0 = 1.0 - wy1;
  let wz1 = tz.weight;
  let wz0 = 1.0 - wz1;

  // The four rows' values at the columns of the last output, (r00, r01,
  // r10, r11) in a vec4 per column. The taps never move backwards along W,
  // so an output often reads the columns of the one before it (at scale 2,
  // every second output reads exactly them) and loads nothing.
  let rows = vec4<u32>(r00, r01, r10, r11);
  var column_a = 0xffffffffu;
  var column_b = 0xffffffffu;
  var va = vec4<f32>(0.0);
  var vb = vec4<f32>(0.0);
  for (var ox = x_begin; ox < x_stop; ox++) {
    let tx = tap(params.taps_width, ox);
    let wx1 = tx.weight;
    let wx0 = 1.0 - wx1;
    let a = tx.first;
    let b = tx.second;
    if (a != column_a) {
      if (a == column_b) {
        va = vb;
      } else {
        va = column_values(rows, a);
      }
      column_a = a;
    }
    if (b != column_b) {
      if (b == a) {
        vb = va;
      } else {
        vb = column_values(rows, b);
      }
      column_b = b;
    }
    let plane0 = wy0 * (wx0 * va.x + wx1 * vb.x) +
                 wy1 * (wx0 * va.y + wx1 * vb.y);
    let plane1 = wy0 * (wx0 * va.z + wx1 * vb.z) +
                 wy1 * (wx0 * va.w + wx1 * vb.w);
    out[row * params.out_width + ox] = wz0 * plane0 + wz1 * plane1;
  }
}
