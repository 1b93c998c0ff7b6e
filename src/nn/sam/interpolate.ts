// Resampling of SAM's learned tables, which are stored channels last
// (pos_embed [1, H, W, C], rel_pos_h [rows, c]), on upsample3d in linear
// mode with align_corners false. The tables are parameters, so the
// resampling stays differentiable; upsample3d also shrinks a table when
// the target is smaller.

import { permute } from '../../ops/layout.js';
import { upsample3d } from '../../ops/upsample.js';
import { reshape } from '../../ops/view.js';
import { formatShape, tidy, type Tensor } from '../../tensor.js';

/**
 * Resamples the rows of `table` [rows, c] linearly to `rows` rows, like
 * F.interpolate(mode='linear') along the rows, as SAM's get_rel_pos does.
 */
export function resampleRows(table: Tensor, rows: number): Tensor {
  if (table.rank !== 2) {
    throw new RangeError(
      `resampleRows: table ${formatShape(table.shape)} must be [rows, c]`,
    );
  }
  const [inRows, c] = table.shape;
  if (inRows === rows) return table;
  return tidy(() => {
    // [rows, c] -> [1, c, 1, 1, rows]: the rows become the W axis.
    const columns = reshape(permute(table, [1, 0]), [1, c, 1, 1, inRows]);
    const resized = upsample3d(columns, { size: [1, 1, rows], mode: 'linear' });
    return permute(reshape(resized, [c, rows]), [1, 0]);
  });
}

/**
 * Resamples a channels-last grid `grid` [1, H, W, C] to [1, height, width,
 * C] bilinearly (align_corners false, no antialiasing).
 */
export function resampleGrid(
  grid: Tensor,
  height: number,
  width: number,
): Tensor {
  if (grid.rank !== 4 || grid.shape[0] !== 1) {
    throw new RangeError(
      `resampleGrid: grid ${formatShape(grid.shape)} must be [1, H, W, C]`,
    );
  }
  const [, h, w, c] = grid.shape;
  if (h === height && w === width) return grid;
  return tidy(() => {
    const channelsFirst = reshape(permute(grid, [0, 3, 1, 2]), [1, c, 1, h, w]);
    const size = [1, height, width] as const;
    const resized = upsample3d(channelsFirst, { size, mode: 'linear' });
    const planes = reshape(resized, [1, c, height, width]);
    return permute(planes, [0, 2, 3, 1]);
  });
}
