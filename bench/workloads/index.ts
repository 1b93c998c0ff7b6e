// The benchmarks `npm run bench` runs, in order. To add one, write a
// file in this folder that exports a Workload (see harness.ts) and list it
// here; `--only NAME` then selects it by its name.

import type { Workload } from '../harness.js';
import { add16M } from './add16m.js';
import { w1, w2 } from './conv3d.js';
import { w4, w5 } from './losses.js';
import { m1 } from './m1.js';
import { w3, w3Forward } from './warp.js';
import { samB, samS } from './sam.js';
import { align } from './align.js';
import { trainStage1, trainStage2 } from '../train.js';

export const WORKLOADS: readonly Workload[] = [
  add16M,
  m1,
  w1,
  w2,
  w3,
  w3Forward,
  w4,
  w5,
  samS,
  samB,
  align,
  trainStage1,
  trainStage2,
];
