// ALIGN: affine pre-alignment of the atlas IXI012 onto an IXI test scan,
// both preprocessed to 64^3 with the structure table (untimed). Each run
// aligns onto the next of the four test scans in turn. It prints the wall
// time, the process CPU time divided by the 2 cores, and the mean Dice of
// the atlas labels before and after alignment. After: the labels warped
// with nearest sampling by the recovered affine, scored against the scan's
// labels on its grid. Before: the two preprocessed grids compared voxel by
// voxel, as the model would see them without pre-alignment. Both are
// scored over the 17 large regions of docs/data.md and over all 42
// structures.

import { readFileSync } from 'node:fs';
import {
  alignAffine,
  diceScore,
  loadStructureTable,
  preprocess,
  sync,
  tensor,
  warp,
  type PreprocessedVolume,
} from '../../src/index.js';
import { readNiftiFile } from '../../src/node.js';
import type { Workload } from '../harness.js';

const SIZE = 64;
const DATA = new URL('../../data/ixi-brain/', import.meta.url);
const ATLAS = 'IXI012-HH-1211';
const TEST_SCANS = [
  'IXI039-HH-1261',
  'IXI048-HH-1326',
  'IXI049-HH-1358',
  'IXI051-HH-1328',
];
/** Structure ids of the 17 large regions (docs/data.md). */
const LARGE_REGIONS = [
  5, 6, 2, 1, 8, 7, 10, 9, 12, 11, 16, 15, 23, 25, 24, 27, 26,
];

interface Scan {
  id: string;
  image: PreprocessedVolume;
  labels: PreprocessedVolume;
}

async function loadScan(
  id: string,
  structures: ReturnType<typeof loadStructureTable>,
): Promise<Scan> {
  const path = (file: string) => new URL(file, DATA).pathname;
  const image = await readNiftiFile(path(`images/${id}_t1.nii.gz`));
  const labels = await readNiftiFile(path(`labels/${id}_labels.nii.gz`));
  const result = preprocess(image, { size: SIZE, labels, structures });
  return { id, image: result.image, labels: result.labels! };
}

function meanDice(
  labels: Float32Array,
  truth: Float32Array,
  ids: readonly number[],
): string {
  return diceScore(labels, truth, ids).mean!.toFixed(3);
}

export const align: Workload = {
  name: 'ALIGN',
  summary:
    `alignAffine of IXI012 onto an IXI test scan at ${SIZE}^3 ` +
    '(80 + 40 + 15 Adam steps on local NCC)',
  defaultRun: false,
  iterations: 4,
  timeMs: 0,
  warmupIterations: 1,
  async prepare() {
    const csv = readFileSync(new URL('structures.csv', DATA), 'utf8');
    const structures = loadStructureTable(csv);
    const allIds = structures.names.map((_, id) => id).slice(1);
    const atlas = await loadScan(ATLAS, structures);
    const scans: Scan[] = [];
    for (const id of TEST_SCANS) scans.push(await loadScan(id, structures));
    const shape = [1, 1, SIZE, SIZE, SIZE];
    const atlasLabels = tensor(atlas.labels.data, shape);
    let next = 0;
    return {
      run: async () => {
        const scan = scans[next];
        next = (next + 1) % scans.length;
        const started = performance.now();
        const cpu = process.cpuUsage();
        const result = await alignAffine(scan.image, atlas.image);
        await sync();
        const wallMs = performance.now() - started;
        const used = process.cpuUsage(cpu);
        const cpuMs = (used.user + used.system) / 1000 / 2;

        const moved = warp(atlasLabels, result.flow, { mode: 'nearest' });
        const warped = await moved.toArray();
        [moved, result.flow, result.warped].forEach((t) => t.dispose());
        const truth = scan.labels.data;
        const before = atlas.labels.data;
        console.log(
          `  ${scan.id}: ${(wallMs / 1000).toFixed(1)} s wall, ` +
            `${(cpuMs / 1000).toFixed(1)} s CPU / 2; Dice 17 large ` +
            `${meanDice(before, truth, LARGE_REGIONS)} -> ` +
            `${meanDice(warped, truth, LARGE_REGIONS)}, all 42 ` +
            `${meanDice(before, truth, allIds)} -> ` +
            `${meanDice(warped, truth, allIds)}`,
        );
      },
      dispose: () => atlasLabels.dispose(),
    };
  },
};
