// General strided reduction: for every kept position m and piece c of the
// reduced index range, out[c * out_size + m] combines
// x[base(m) + offset(r)] for r in [c * chunk_size, (c + 1) * chunk_size).
// With chunks == 1 the output is final; otherwise the caller reduces the
// [chunks, out_size] partials again (a column reduction with this kernel),
// so long reductions run as a tree of short sequential runs in fixed order.
//
// Bindings: 1 x (read, f32), 2 out (read_write, f32).
// Uniforms: out_size = kept positions; chunks = pieces of the reduced range;
//   chunk_size = reduced elements per piece; red_size = reduced elements per
//   output; out_rank, out_shape, out_strides = the kept axes of x, their
//   sizes and x's element strides along them; red_rank, red_shape,
//   red_strides = the same for the reduced axes; scale = factor applied to
//   every output (1 / count on the last pass of a mean, else 1);
//   per_invocation = consecutive outputs each invocation computes (more
//   than 1 on CPU adapters when pieces are short, see kernels/runs.ts).
//   Ranks up to 8.
// Constants: {{COMBINE}} combines acc and v; {{IDENTITY}} starts the three
//   extra accumulators ('0.0' for a sum, 'first' for max and min).
// Workgroup: WORKGROUP_SIZE x 1 x 1, per_invocation outputs per invocation.
//   Neighbouring outputs are neighbouring kept positions, which are
//   neighbouring addresses when the innermost axis is kept.
// Grid: ceil(chunks * out_size / (per_invocation * WORKGROUP_SIZE)),
//   folded into 2D or 3D past 65,535.

fn combine(acc: f32, v: f32) -> f32 {
  return {{COMBINE}};
}

fn offset_of(index: u32, rank: u32, shape: array<vec4<u32>, 2>,
             strides: array<vec4<u32>, 2>) -> u32 {
  var rest = index;
  var offset = 0u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let dim = shape[d / 4][d % 4];
    offset += (rest % dim) * strides[d / 4][d % 4];
    rest = rest / dim;
  }
  return offset;
}

fn kept_offset(m: u32) -> u32 {
  // One or two kept axes are the common cases: skip the loop, whose
  // dynamic indexing into the uniform arrays is slow on llvmpipe.
  if (params.out_rank == 1u) {
    return m * params.out_strides[0].x;
  }
  if (params.out_rank == 2u) {
    let inner = params.out_shape[0].y;
    return (m / inner) * params.out_strides[0].x + (m % inner) * params.out_strides[0].y;
  }
  return offset_of(m, params.out_rank, params.out_shape, params.out_strides);
}

fn reduced_offset(r: u32) -> u32 {
  // One reduced axis is the common case: skip the divisions.
  if (params.red_rank == 1u) {
    return r * params.red_strides[0].x;
  }
  return offset_of(r, params.red_rank, params.red_shape, params.red_strides);
}

// Combines piece c of the reduced range of kept position m, for output
// o = c * out_size + m.
fn reduce_output(o: u32) -> f32 {
  let c = o / params.out_size;
  let m = o % params.out_size;
  let base = kept_offset(m);
  let start = c * params.chunk_size;
  let count = min(params.chunk_size, params.red_size - start);
  let first = x[base + reduced_offset(start)];
  var a0 = first;
  var a1 = f32({{IDENTITY}});
  var a2 = f32({{IDENTITY}});
  var a3 = f32({{IDENTITY}});
  var k = 1u;
  for (; k + 4u <= count; k += 4u) {
    let r = start + k;
    a0 = combine(a0, x[base + reduced_offset(r)]);
    a1 = combine(a1, x[base + reduced_offset(r + 1u)]);
    a2 = combine(a2, x[base + reduced_offset(r + 2u)]);
    a3 = combine(a3, x[base + reduced_offset(r + 3u)]);
  }
  for (; k < count; k++) {
    a0 = combine(a0, x[base + reduced_offset(start + k)]);
  }
  return combine(combine(a0, a1), combine(a2, a3));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = global_index(wid, nwg, lid) * params.per_invocation;
  let last = min(first + params.per_invocation, params.chunks * params.out_size);
  for (var o = first; o < last; o++) {
    out[o] = reduce_output(o) * params.scale;
  }
}
