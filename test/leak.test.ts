import { beforeAll, describe, expect, it } from 'vitest';
import {
  Adam,
  liveTensorCount,
  mean,
  memoryStats,
  mul,
  nn,
  randn,
  relu,
  sub,
  tidy,
  type Tensor,
} from '../src/index.js';
import { device } from './helpers.js';

beforeAll(device);

class Mlp extends nn.Module {
  readonly hidden: nn.Linear;
  readonly output: nn.Linear;

  constructor() {
    super();
    this.hidden = this.module('hidden', new nn.Linear(3, 8, { seed: 1 }));
    this.output = this.module('output', new nn.Linear(8, 2, { seed: 2 }));
  }

  forward(x: Tensor): Tensor {
    return this.output.forward(relu(this.hidden.forward(x)));
  }
}

interface MemorySnapshot {
  liveTensors: number;
  storageLiveBytes: number;
  storageLiveBuffers: number;
  storageFreeBytes: number;
  uniformLiveBytes: number;
  uniformFreeBytes: number;
  totalBytes: number;
}

function snapshot(): MemorySnapshot {
  const stats = memoryStats();
  return {
    liveTensors: liveTensorCount(),
    storageLiveBytes: stats.storage.liveBytes,
    storageLiveBuffers: stats.storage.liveBuffers,
    storageFreeBytes: stats.storage.freeBytes,
    uniformLiveBytes: stats.uniform.liveBytes,
    uniformFreeBytes: stats.uniform.freeBytes,
    totalBytes: stats.totalBytes,
  };
}

describe('memory over a training loop', () => {
  it('2000 adam steps keep memory flat', async () => {
    const before = liveTensorCount();
    const model = new Mlp();
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    const x = randn([5, 3], 3);
    const target = randn([5, 2], 4);
    const steps = 2000;
    let atStep10: MemorySnapshot | null = null;
    let firstLoss = NaN;
    let lastLoss = NaN;

    for (let step = 1; step <= steps; step++) {
      const loss = tidy(() => {
        const error = sub(model.forward(x), target);
        return mean(mul(error, error));
      });
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      // Reading the loss every step ends each step on a submitted batch,
      // so every step leaves the pools in the same state.
      const value = await loss.item();
      loss.dispose();
      if (step === 1) firstLoss = value;
      lastLoss = value;
      if (step === 10) atStep10 = snapshot();
    }
    const atEnd = snapshot();

    expect(atStep10).not.toBeNull();
    expect(atEnd.liveTensors).toBe(atStep10!.liveTensors);
    expect(atEnd.storageLiveBytes).toBe(atStep10!.storageLiveBytes);
    expect(atEnd.storageLiveBuffers).toBe(atStep10!.storageLiveBuffers);
    expect(atEnd.storageFreeBytes).toBe(atStep10!.storageFreeBytes);
    expect(atEnd.uniformLiveBytes).toBe(atStep10!.uniformLiveBytes);
    expect(atEnd.uniformFreeBytes).toBe(atStep10!.uniformFreeBytes);
    expect(atEnd.totalBytes).toBe(atStep10!.totalBytes);
    // The loop trained: the loss fell well below its start.
    expect(lastLoss).toBeLessThan(0.5 * firstLoss);

    // What stays alive between steps: 4 parameters, their 4 gradients,
    // Adam's 8 moments, x and target.
    expect(atEnd.liveTensors - before).toBe(18);
    optimizer.dispose();
    model.dispose();
    x.dispose();
    target.dispose();
    expect(liveTensorCount()).toBe(before);
    // About 20 s on an idle 2-core machine; the margin covers a loaded one.
  }, 600_000);
});
