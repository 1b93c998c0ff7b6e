// Structure tables: which label codes of a fine parcellation (such as the
// 148 MUSE regions of the IXI maps) make up each scored structure, read
// from a CSV with the columns label, structure_id, structure.

import type { Volume } from './volume.js';

/** One row of a structure table: a label code and its structure. */
export interface StructureRow {
  label: number;
  structureId: number;
  structure: string;
}

/**
 * A parsed structure table. `names[id]` is the name of structure id
 * (names[0] is "background"); `structureOf` maps a label code to its id.
 * Rows with structure_id 0 assign a code to the background explicitly.
 */
export interface StructureTable {
  rows: StructureRow[];
  names: string[];
  structureOf: Map<number, number>;
}

const COLUMNS = ['label', 'structure_id', 'structure'];

/**
 * Parses a structure table from CSV text with the header
 * `label,structure_id,structure`. Checks that labels are distinct positive
 * integers, that structure ids run 1..K with none missing (0 is allowed for
 * codes sent to the background) and that each id has one name.
 */
export function loadStructureTable(csvText: string): StructureTable {
  const source = 'loadStructureTable';
  const lines = csvText.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines.length === 0) {
    throw new Error(`${source}: the CSV text is empty`);
  }
  const header = lines[0].split(',').map((cell) => cell.trim());
  if (header.join(',') !== COLUMNS.join(',')) {
    throw new Error(
      `${source}: header is "${lines[0]}"; expected "${COLUMNS.join(',')}"`,
    );
  }

  const rows: StructureRow[] = [];
  const structureOf = new Map<number, number>();
  const nameOf = new Map<number, string>([[0, 'background']]);
  for (let line = 1; line < lines.length; line++) {
    const row = parseRow(lines[line], line + 1, source);
    if (structureOf.has(row.label)) {
      throw new Error(
        `${source}: line ${line + 1}: label ${row.label} appears twice`,
      );
    }
    const known = nameOf.get(row.structureId);
    if (row.structureId > 0 && known !== undefined && known !== row.structure) {
      throw new Error(
        `${source}: line ${line + 1}: structure_id ${row.structureId} is ` +
          `named "${row.structure}" here but "${known}" before`,
      );
    }
    if (row.structureId > 0) nameOf.set(row.structureId, row.structure);
    structureOf.set(row.label, row.structureId);
    rows.push(row);
  }

  const count = Math.max(0, ...nameOf.keys());
  const names: string[] = [];
  for (let id = 0; id <= count; id++) {
    const name = nameOf.get(id);
    if (name === undefined) {
      throw new Error(
        `${source}: structure ids must run 1..${count} without gaps; ` +
          `${id} has no row`,
      );
    }
    names.push(name);
  }
  return { rows, names, structureOf };
}

function parseRow(text: string, line: number, source: string): StructureRow {
  const cells = text.split(',').map((cell) => cell.trim());
  if (cells.length !== 3) {
    throw new Error(
      `${source}: line ${line} has ${cells.length} cells; expected 3 ` +
        `(label, structure_id, structure)`,
    );
  }
  const label = Number(cells[0]);
  const structureId = Number(cells[1]);
  if (!Number.isInteger(label) || label <= 0 || cells[0] === '') {
    throw new Error(
      `${source}: line ${line}: label "${cells[0]}" is not a positive ` +
        `integer (0 is the background and needs no row)`,
    );
  }
  if (!Number.isInteger(structureId) || structureId < 0 || cells[1] === '') {
    throw new Error(
      `${source}: line ${line}: structure_id "${cells[1]}" is not a ` +
        `non-negative integer`,
    );
  }
  if (cells[2] === '') {
    throw new Error(`${source}: line ${line}: the structure name is empty`);
  }
  return { label, structureId, structure: cells[2] };
}

/**
 * Maps a label map's codes to structure ids (0 stays 0). Codes missing
 * from the table are an error that lists them.
 */
export function groupLabels(labels: Volume, table: StructureTable): Volume;
export function groupLabels(
  labels: ArrayLike<number>,
  table: StructureTable,
): Float32Array;
export function groupLabels(
  labels: Volume | ArrayLike<number>,
  table: StructureTable,
): Volume | Float32Array {
  const isVolume = 'dims' in labels && 'affine' in labels;
  const data: ArrayLike<number> = isVolume ? (labels as Volume).data : labels;
  const out = new Float32Array(data.length);
  const missing = new Set<number>();
  for (let i = 0; i < data.length; i++) {
    const code = data[i];
    if (code === 0) continue;
    const id = table.structureOf.get(code);
    if (id === undefined) missing.add(code);
    else out[i] = id;
  }
  if (missing.size > 0) {
    const list = [...missing].sort((a, b) => a - b);
    throw new Error(
      `groupLabels: label codes [${list.join(', ')}] are not in the ` +
        `structure table`,
    );
  }
  if (!isVolume) return out;
  return { ...(labels as Volume), data: out, datatype: 'float32' };
}
