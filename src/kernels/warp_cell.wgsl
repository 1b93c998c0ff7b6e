// Shared code of warp_linear.wgsl, warp_nearest.wgsl and
// warp_backward.wgsl, spliced into them through the placeholder WARP_CELL.
// Not a kernel by itself. It reads the uniforms runs_per_row, depth,
// height, width and plane and the binding `flow`.
//
// Layout: volumes are [N, C, D, H, W] row-major and the flow is
// [N, 3, D, H, W] with channels (D, H, W) in voxels. A voxel's offset in a
// channel plane of D * H * W elements is (d * H + h) * W + w.
//
// The sample point of output voxel (d, h, w) is (d + flow_d, h + flow_h,
// w + flow_w) in voxel units, with no normalisation to [-1, 1]. Its cell
// has the corners floor(p) and floor(p) + 1 along each axis. A corner
// outside [0, size - 1] contributes 0 (zero padding). Its index is clamped
// into the volume so that every read stays in bounds, and its weight is 0.
//
// Corners are packed in vec4s by their x side: `x0` holds the four corners
// at the lower x and `x1` those at the upper x, each in the row order
// (z0 y0, z0 y1, z1 y0, z1 y1). The x1 corners of a voxel's cell are then
// the x0 corners of the next voxel's cell whenever the cell moves by one
// along W, which lets warp_backward.wgsl merge their scatter.

struct Axis {
  // Clamped indices of the lower and upper corner.
  index: vec2<u32>,
  // 1 for a corner inside [0, size - 1], else 0.
  inside: vec2<f32>,
  // Position minus floor(position), in [0, 1].
  fraction: f32,
}

fn axis_of(position: f32, size: u32) -> Axis {
  let lower = floor(position);
  // Clamping before the conversion keeps far points far: -2 and size put
  // both corners outside. A NaN position gives a NaN fraction, so a NaN
  // flow gives NaN values while every read stays in bounds.
  let first = i32(clamp(lower, -2.0, f32(size)));
  let corners = vec2<i32>(first, first + 1);
  let last = i32(size) - 1;
  var axis: Axis;
  axis.index = vec2<u32>(clamp(corners, vec2<i32>(0), vec2<i32>(last)));
  let inside = (corners >= vec2<i32>(0)) & (corners <= vec2<i32>(last));
  axis.inside = select(vec2<f32>(0.0), vec2<f32>(1.0), inside);
  axis.fraction = position - lower;
  return axis;
}

struct Cell {
  // Plane offsets of the corners at the lower and the upper x.
  index_x0: vec4<u32>,
  index_x1: vec4<u32>,
  // Weights of the (z, y) rows, (1 - t, t) of the x sides, each 0 for
  // corners outside the volume: the weight of corner (row r, side x0) is
  // rows[r] * sides.x.
  rows: vec4<f32>,
  sides: vec2<f32>,
}

// Per-axis data of a sample point.
struct Point {
  z: Axis,
  y: Axis,
  x: Axis,
}

// A run of consecutive voxels along W in one row of one batch item, the
// work of one invocation. Finding the run divides; its voxels then follow
// by counting along w, so the per-voxel index math has no division.
struct Run {
  // Batch item and row (d, h).
  n: u32,
  d: u32,
  h: u32,
  // w of the first voxel, voxels in the run (fewer than the run length at
  // the end of a row), and the plane offset of the first voxel.
  first: u32,
  count: u32,
  s_first: u32,
}

fn run_of(index: u32, run_length: u32) -> Run {
  let row = index / params.runs_per_row;
  let rows_per_item = params.depth * params.height;
  var run: Run;
  run.first = (index - row * params.runs_per_row) * run_length;
  run.count = min(run_length, params.width - run.first);
  run.n = row / rows_per_item;
  let row_in_item = row - run.n * rows_per_item;
  run.d = row_in_item / params.height;
  run.h = row_in_item - run.d * params.height;
  run.s_first = row_in_item * params.width + run.first;
  return run;
}

// The sample point of voxel k of a run: (d, h, w) plus the flow there.
fn point_of(run: Run, k: u32) -> Point {
  let plane = params.plane;
  let flow_base = 3u * run.n * plane + run.s_first + k;
  var point: Point;
  point.z = axis_of(f32(run.d) + flow[flow_base], params.depth);
  point.y = axis_of(f32(run.h) + flow[flow_base + plane], params.height);
  point.x = axis_of(f32(run.first + k) + flow[flow_base + 2u * plane], params.width);
  return point;
}

// Weights (1 - t, t) of the two corners of an axis, masked to the inside.
fn lerp_weights(axis: Axis) -> vec2<f32> {
  return axis.inside * vec2<f32>(1.0 - axis.fraction, axis.fraction);
}

// The four (z, y) products of two per-axis pairs, in row order.
fn outer_zy(z: vec2<f32>, y: vec2<f32>) -> vec4<f32> {
  return vec4<f32>(z.x * y.x, z.x * y.y, z.y * y.x, z.y * y.y);
}

fn cell_of(point: Point) -> Cell {
  let width = params.width;
  let slab = point.z.index * (params.height * width);
  let row_y = point.y.index * width;
  let rows = vec4<u32>(slab.x + row_y.x, slab.x + row_y.y, slab.y + row_y.x, slab.y + row_y.y);
  var cell: Cell;
  cell.index_x0 = rows + vec4<u32>(point.x.index.x);
  cell.index_x1 = rows + vec4<u32>(point.x.index.y);
  cell.rows = outer_zy(lerp_weights(point.z), lerp_weights(point.y));
  cell.sides = lerp_weights(point.x);
  return cell;
}
