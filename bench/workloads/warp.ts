// W3: the trilinear warp at the training resolution, a [1,1,128^3] image by
// a [1,3,128^3] flow. W3 times the forward and the backward to both inputs
// (the image-gradient scatter included), W3-forward the forward alone.
// Both are memory bound, so their bytes are the least a run must stream:
// W3 reads each input once and writes each gradient once (as W4 and W5
// count), W3-forward reads the image and the flow and writes the output.
//
// The flow is smooth and a few voxels large, as a registration network
// produces: neighbouring voxels sample neighbouring cells. A flow of
// independent random displacements would scatter the reads and the
// gradient's atomics and run slower.

import {
  backward,
  randn,
  sync,
  tensor,
  warp,
  type Tensor,
} from '../../src/index.js';
import type { Workload } from '../harness.js';

const SIZE = 128;

/** A smooth displacement of up to about 5 voxels along each axis. */
function smoothFlow(size: number): Tensor {
  const plane = size ** 3;
  const data = new Float32Array(3 * plane);
  for (let axis = 0; axis < 3; axis++) {
    for (let s = 0; s < plane; s++) {
      const z = Math.floor(s / (size * size));
      const y = Math.floor(s / size) % size;
      const x = s % size;
      data[axis * plane + s] =
        3 * Math.sin((x + 2 * axis) / 9) * Math.cos((y - axis) / 13) +
        2 * Math.sin(z / 7 + axis);
    }
  }
  return tensor(data, [1, 3, size, size, size]);
}

export const w3: Workload = {
  name: 'W3',
  summary:
    `warp forward + backward to a [1,1,${SIZE},${SIZE},${SIZE}] image ` +
    'and its [1,3,...] flow',
  iterations: 5,
  timeMs: 1000,
  warmupIterations: 1,
  async prepare() {
    const image = randn([1, 1, SIZE, SIZE, SIZE], 31, { requiresGrad: true });
    const flow = smoothFlow(SIZE);
    flow.requiresGrad = true;
    const upstream = randn([1, 1, SIZE, SIZE, SIZE], 32);
    const run = async (): Promise<void> => {
      const out = warp(image, flow);
      backward(out, upstream);
      await sync();
      out.dispose();
      for (const input of [image, flow]) {
        input.grad?.dispose();
        input.grad = null;
      }
    };
    // Compiles the pipelines outside the timed runs.
    await run();
    return {
      run,
      bytes: 2 * (image.bytes + flow.bytes),
      dispose: () => [image, flow, upstream].forEach((t) => t.dispose()),
    };
  },
};

export const w3Forward: Workload = {
  name: 'W3-forward',
  summary:
    `warp forward of a [1,1,${SIZE},${SIZE},${SIZE}] image ` +
    'by a [1,3,...] flow',
  iterations: 10,
  timeMs: 1000,
  warmupIterations: 2,
  async prepare() {
    const image = randn([1, 1, SIZE, SIZE, SIZE], 31);
    const flow = smoothFlow(SIZE);
    await sync();
    return {
      run: async () => {
        const out = warp(image, flow);
        await sync();
        out.dispose();
      },
      bytes: 2 * image.bytes + flow.bytes,
      dispose: () => {
        image.dispose();
        flow.dispose();
      },
    };
  },
};
