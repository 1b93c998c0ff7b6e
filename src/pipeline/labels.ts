// Label maps: checks, the set of values, and remapping to contiguous ids
// 0..K (what one-hot encoding and the Dice loss need) with a table that
// maps results back to the original label values.

/**
 * Returns the first voxel whose value is not a non-negative integer, or
 * null when every value is one.
 */
export function findInvalidLabel(
  data: ArrayLike<number>,
): { index: number; value: number } | null {
  for (let index = 0; index < data.length; index++) {
    const value = data[index];
    if (!Number.isInteger(value) || value < 0) return { index, value };
  }
  return null;
}

/** Returns the distinct values of a label map in ascending order. */
export function labelValues(data: ArrayLike<number>): number[] {
  const seen = new Set<number>();
  for (let i = 0; i < data.length; i++) seen.add(data[i]);
  return [...seen].sort((a, b) => a - b);
}

/**
 * A remapped label map: `data` contains ids 0..table.length - 1, and
 * `table[id]` is the original value of id (table[0] is 0, background).
 */
export interface RemappedLabels {
  data: Float32Array;
  table: number[];
}

/**
 * Maps label values to contiguous ids 0..K in ascending order of value,
 * background 0 staying 0. Pass the `table` of another map (usually the
 * atlas) to number a target the same way. Values missing from that table
 * are an error that lists them.
 */
export function remapLabels(
  data: ArrayLike<number>,
  table?: readonly number[],
): RemappedLabels {
  const source = 'remapLabels';
  const invalid = findInvalidLabel(data);
  if (invalid) {
    throw new Error(
      `${source}: value ${invalid.value} at index ${invalid.index} is not ` +
        `a non-negative integer label`,
    );
  }
  const values = table ? [...table] : labelValues(data);
  if (values[0] !== 0) values.unshift(0);
  checkTable(values, source);

  const idOf = new Map<number, number>();
  values.forEach((value, id) => idOf.set(value, id));
  const out = new Float32Array(data.length);
  const missing = new Set<number>();
  for (let i = 0; i < data.length; i++) {
    const id = idOf.get(data[i]);
    if (id === undefined) missing.add(data[i]);
    else out[i] = id;
  }
  if (missing.size > 0) {
    const list = [...missing].sort((a, b) => a - b);
    throw new Error(
      `${source}: label values [${list.join(', ')}] are not in the table ` +
        `of ${values.length} values [${summarise(values)}]`,
    );
  }
  return { data: out, table: values };
}

/**
 * Maps ids 0..K back to the original label values of `table`. Ids outside
 * the table are an error.
 */
export function restoreLabels(
  ids: ArrayLike<number>,
  table: readonly number[],
): Float32Array {
  const out = new Float32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const value = table[ids[i]];
    if (value === undefined) {
      throw new Error(
        `restoreLabels: id ${ids[i]} at index ${i} is outside the table ` +
          `of ${table.length} labels`,
      );
    }
    out[i] = value;
  }
  return out;
}

function checkTable(values: number[], source: string): void {
  for (let id = 0; id < values.length; id++) {
    const value = values[id];
    const duplicate = values.indexOf(value) !== id;
    if (!Number.isInteger(value) || value < 0 || duplicate) {
      throw new Error(
        `${source}: table entry ${id} (${value}) must be a distinct ` +
          `non-negative integer`,
      );
    }
  }
}

function summarise(values: readonly number[]): string {
  if (values.length <= 12) return values.join(', ');
  return `${values.slice(0, 10).join(', ')}, ..., ${values.at(-1)}`;
}
