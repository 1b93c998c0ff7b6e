// CPU timings of the data pipeline on a real IXI scan (120x120x90 at
// 2 mm) and on phantoms. Run them with `npx tsx bench/preprocess.bench.ts`.

import { readFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import {
  makePhantom,
  preprocess,
  previewPng,
  readNifti,
  resampleVolume,
  toSourceGrid,
  type Volume,
} from '../src/index.js';

function readIxi(kind: 'images' | 'labels', suffix: string): Volume {
  const url = new URL(
    `../data/ixi-brain/${kind}/IXI012-HH-1211_${suffix}.nii.gz`,
    import.meta.url,
  );
  return readNifti(new Uint8Array(readFileSync(url)));
}

const image = readIxi('images', 't1');
const labels = readIxi('labels', 'labels');
const at128 = preprocess(image, { size: 128, labels });
const at64 = preprocess(image, { size: 64, labels });

const bench = new Bench({ time: 2000, warmupIterations: 2 });
bench
  .add('preprocess IXI image + labels to 64^3', () => {
    preprocess(image, { size: 64, labels });
  })
  .add('preprocess IXI image + labels to 128^3', () => {
    preprocess(image, { size: 128, labels });
  })
  .add('resample IXI to 128^3, linear', () => {
    resampleVolume(image, at128.image, { mode: 'linear' });
  })
  .add('resample IXI labels to 128^3, nearest', () => {
    resampleVolume(labels, at128.image, { mode: 'nearest' });
  })
  .add('toSourceGrid 64^3 labels, nearest', () => {
    toSourceGrid(at64.labels!, at64.labels!);
  })
  .add('toSourceGrid 64^3 labels, vote', () => {
    toSourceGrid(at64.labels!, at64.labels!, { mode: 'vote' });
  })
  .add('makePhantom 64^3', () => {
    makePhantom({ size: 64, seed: 1 });
  })
  .add('previewPng IXI with labels', () => {
    previewPng(image, { labels });
  });

await bench.run();
console.table(bench.table());
