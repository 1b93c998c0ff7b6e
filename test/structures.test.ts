// The structure table of the IXI label maps and its loader.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  createVolume,
  groupLabels,
  loadStructureTable,
  readNifti,
  type StructureTable,
} from '../src/index.js';

const SHARED = new URL('../../shared/data/', import.meta.url);
const TABLE_CSV = readFileSync(
  new URL('../data/ixi-brain/structures.csv', import.meta.url),
  'utf8',
);

// MUSE codes of label-names.csv with their names.
function museNames(): Map<number, string> {
  const text = readFileSync(new URL('ixi-brain/label-names.csv', SHARED), 'utf8');
  const names = new Map<number, string>();
  for (const line of text.trim().split('\n').slice(1)) {
    const [index, , name] = line.split(',');
    names.set(Number(index), name.trim());
  }
  return names;
}

function codesOf(table: StructureTable, id: number): number[] {
  return table.rows.filter((row) => row.structureId === id).map((row) => row.label);
}

describe('IXI structure table', () => {
  const table = loadStructureTable(TABLE_CSV);
  const names = museNames();

  it('covers all 148 label codes', () => {
    const expected = [...names.keys(), 1, 46, 69].sort((a, b) => a - b);
    const codes = table.rows.map((row) => row.label).sort((a, b) => a - b);
    expect(codes).toEqual(expected);
    expect(codes.length).toBe(148);
  });

  it('has 42 named structures', () => {
    expect(table.names.length).toBe(43);
    expect(table.names[0]).toBe('background');
    expect(new Set(table.names).size).toBe(43);
    for (let id = 1; id <= 42; id++) {
      expect(codesOf(table, id).length, `structure ${id}`).toBeGreaterThan(0);
    }
  });

  it('keeps sides of named regions', () => {
    for (const row of table.rows) {
      const name = names.get(row.label);
      if (name === undefined || row.structureId === 0) continue;
      const side = /_([LR])$/.exec(name)?.[1];
      const structureSide = /_([LR])$/.exec(row.structure)?.[1];
      expect(structureSide, `${row.label} ${name} -> ${row.structure}`).toBe(side);
    }
  });

  it('unnamed codes are assigned', () => {
    expect(table.names[table.structureOf.get(1)!]).toBe('CSF');
    expect(table.names[table.structureOf.get(46)!]).toBe('CSF');
    expect(table.structureOf.get(69)).toBe(0);
  });

  it('17 large regions stand alone', () => {
    const large = [4, 11, 51, 52, 59, 60, 36, 37, 57, 58, 47, 48, 35, 38, 39, 40, 41];
    const ids = new Set<number>();
    for (const code of large) {
      const id = table.structureOf.get(code)!;
      expect(codesOf(table, id), `code ${code}`).toEqual([code]);
      ids.add(id);
    }
    expect(ids.size).toBe(17);
  });

  it('groups a real label map', () => {
    const bytes = readFileSync(
      new URL('ixi-brain/labels/IXI012-HH-1211_labels.nii.gz', SHARED),
    );
    const labels = readNifti(new Uint8Array(bytes));
    const grouped = groupLabels(labels, table);
    expect(grouped.dims).toEqual(labels.dims);
    expect(Array.from(grouped.affine)).toEqual(Array.from(labels.affine));

    // Each structure's voxel count is the sum of its codes' counts.
    const codeCounts = new Map<number, number>();
    for (const code of labels.data) {
      codeCounts.set(code, (codeCounts.get(code) ?? 0) + 1);
    }
    const structureCounts = new Array(43).fill(0);
    for (const id of grouped.data) structureCounts[id]++;
    for (let id = 1; id <= 42; id++) {
      const expected = codesOf(table, id).reduce(
        (sum, code) => sum + (codeCounts.get(code) ?? 0),
        0,
      );
      expect(structureCounts[id], table.names[id]).toBe(expected);
      expect(expected, table.names[id]).toBeGreaterThan(0);
    }
    expect(structureCounts[0]).toBe(
      (codeCounts.get(0) ?? 0) + (codeCounts.get(69) ?? 0),
    );
  });
});

describe('loadStructureTable', () => {
  const header = 'label,structure_id,structure\n';

  it('parses rows and ids', () => {
    const table = loadStructureTable(
      header + '7,2,Right\r\n3,1,Left\n9,2,Right\n12,0,Background\n',
    );
    expect(table.names).toEqual(['background', 'Left', 'Right']);
    expect([...table.structureOf.entries()]).toEqual([
      [7, 2],
      [3, 1],
      [9, 2],
      [12, 0],
    ]);
    const ids = groupLabels([0, 7, 3, 9, 12], table);
    expect(Array.from(ids)).toEqual([0, 2, 1, 2, 0]);
  });

  it('rejects bad tables', () => {
    const cases: [string, string][] = [
      ['', 'loadStructureTable: the CSV text is empty'],
      [
        'code,id,name\n1,1,A\n',
        'loadStructureTable: header is "code,id,name"; expected ' +
          '"label,structure_id,structure"',
      ],
      [
        header + '1,1,A\n1,2,B\n',
        'loadStructureTable: line 3: label 1 appears twice',
      ],
      [
        header + '1,1,A\n2,1,B\n',
        'loadStructureTable: line 3: structure_id 1 is named "B" here but ' +
          '"A" before',
      ],
      [
        header + '1,1,A\n2,3,C\n',
        'loadStructureTable: structure ids must run 1..3 without gaps; 2 ' +
          'has no row',
      ],
      [
        header + '1.5,1,A\n',
        'loadStructureTable: line 2: label "1.5" is not a positive integer',
      ],
      [
        header + '1,-1,A\n',
        'loadStructureTable: line 2: structure_id "-1" is not a ' +
          'non-negative integer',
      ],
      [header + '1,1\n', 'loadStructureTable: line 2 has 2 cells; expected 3'],
      [header + '1,1,\n', 'loadStructureTable: line 2: the structure name is empty'],
    ];
    for (const [csv, message] of cases) {
      expect(() => loadStructureTable(csv), message).toThrow(message);
    }
  });

  it('groupLabels lists unknown codes', () => {
    const table = loadStructureTable(header + '5,1,A\n');
    const volume = createVolume(Float32Array.of(0, 5, 8, 2, 8), [5, 1, 1]);
    expect(() => groupLabels(volume, table)).toThrow(
      'groupLabels: label codes [2, 8] are not in the structure table',
    );
  });
});
