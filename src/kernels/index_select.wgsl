// Index selection along one axis: x is read as [outer, axis_size, inner],
// out as [outer, count, inner], and out[o, j, i] = x[o, indices[j], i].
// An index that is not a whole number in [0, axis_size) yields `invalid`
// (NaN), because the indices live on the device and cannot be checked
// before the dispatch.
//
// Bindings: 1 x (read, f32), 2 indices (read, f32 holding whole numbers),
//   3 out (read_write, f32).
// Uniforms: size = elements of out; axis_size; count = number of indices;
//   inner; invalid = value written for a bad index.
// Constants: {{RUN}} = consecutive elements of out per invocation (see
//   expand.wgsl).
// Workgroup: WORKGROUP_SIZE x 1 x 1. Grid: ceil(size / (RUN *
//   WORKGROUP_SIZE)) workgroups, folded into 2D or 3D past 65,535.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * {{RUN}}u;
  if (first >= params.size) {
    return;
  }
  let last = min(first + {{RUN}}u, params.size);
  var o = first;
  loop {
    let i = o % params.inner;
    let rest = o / params.inner;
    let j = rest % params.count;
    let outer = rest / params.count;
    let steps = min(last - o, params.inner - i);
    let index = indices[j];
    let valid = index >= 0.0 && index < f32(params.axis_size) && floor(index) == index;
    let base = (outer * params.axis_size + u32(max(index, 0.0))) * params.inner + i;
    for (var k = 0u; k < steps; k++) {
      if (valid) {
        out[o + k] = x[base + k];
      } else {
        out[o + k] = params.invalid;
      }
    }
    o += steps;
    if (o >= last) {
      break;
    }
  }
}
