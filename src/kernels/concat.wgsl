// Copies one part of a concatenation: with `outer` the product of the axes
// before the concatenation axis, the part is [outer, part_row] and sits at
// column `offset` of the whole, read as [outer, whole_row]. Forward
// (concat) writes the part into the whole; backward (split) reads it out.
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: size = elements of the part; part_row = part's elements per
//   outer index (its axis length times the inner size); whole_row = the
//   same for the whole; offset = elements before the part in a whole row.
// Constants: {{SCATTER}} is 'true' to write x (the part) into out (the
//   whole), 'false' to read x (the whole) into out (the part). {{RUN}} =
//   consecutive elements of the part per invocation (see expand.wgsl).
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
  var i = first;
  loop {
    let column = i % params.part_row;
    let j = (i / params.part_row) * params.whole_row + params.offset + column;
    let steps = min(last - i, params.part_row - column);
    for (var k = 0u; k < steps; k++) {
      if ({{SCATTER}}) {
        out[j + k] = x[i + k];
      } else {
        out[i + k] = x[j + k];
      }
    }
    i += steps;
    if (i >= last) {
      break;
    }
  }
}
