// Packs a convolution weight into vec4s of 4 output channels, the layout
// conv3d_rows and conv3d_transpose read:
//   packed[(a * taps + tap) * quads + q][c] = weight[a * stride_a
//     + (first_b + 4q + c) * stride_b + tap], or 0 where 4q + c >= count_b,
// where a runs over the channels the kernel reads (input side) and b over
// the channels it writes (output side), from first_b on.
//
// Bindings: 1 weight (read, f32), 2 packed (read_write, vec4<f32>).
// Uniforms: total = count_a * taps * quads; count_a, count_b, taps, quads =
//   ceil(count_b / 4); stride_a, stride_b = element strides of the two
//   channel axes in weight (taps are contiguous); flip = 0 or 1; first_b =
//   the first written channel packed.
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
  let q = index % params.quads;
  let tap = (index / params.quads) % params.taps;
  let a = index / (params.quads * params.taps);
  var value = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    let b = q * 4u + c;
    if (b < params.count_b) {
      let source_tap = select(tap, params.taps - 1u - tap, params.flip != 0u);
      value[c] = weight[a * params.stride_a + (params.first_b + b) * params.stride_b + source_tap];
    }
  }
  packed[index] = value;
}
