// TensorFlow.js's WebGPU backend on the same adapter, for the workloads it
// has: M1 (matmul), W1 (conv3d forward) and W2 (conv3d backward to input
// and filter). tfjs lays volumes out channels-last (NDHWC) with filters
// [kD, kH, kW, in, out]; shapes here match ours element for element.

import { gpuEntryPoint } from '../../src/device.js';

// The few tfjs calls used here. tfjs-core's own typings pull in an older
// @webgpu/types whose globals clash with ours, so tfjs is imported by a
// module name the compiler does not resolve and typed by this interface.
interface TfTensor {
  shape: number[];
  data(): Promise<unknown>;
  dispose(): void;
}

interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  randomNormal(shape: number[], mean: number, std: number, dtype: 'float32', seed: number): TfTensor;
  matMul(a: TfTensor, b: TfTensor): TfTensor;
  conv3d(x: TfTensor, filter: TfTensor, strides: number, pad: 'same'): TfTensor;
  dispose(tensors: TfTensor[]): void;
  engine(): {
    runKernel(name: string, inputs: Record<string, TfTensor>, attrs: Record<string, unknown>): TfTensor;
  };
}

async function importByName(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

let loaded: Promise<Tf> | null = null;

/** Loads tfjs with its WebGPU backend on our GPU entry point. */
export function loadTfjs(): Promise<Tf> {
  loaded ??= (async () => {
    const gpu = gpuEntryPoint();
    const nav = (globalThis as unknown as { navigator?: Record<string, unknown> }).navigator;
    if (!nav?.gpu) {
      // Node has no navigator.gpu; tfjs looks for one.
      Object.defineProperty(globalThis, 'navigator', {
        value: { ...(nav ?? {}), gpu, userAgent: 'node' },
        configurable: true,
      });
    }
    const tf = (await importByName('@tensorflow/tfjs-core')) as Tf;
    await importByName('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) {
      throw new Error('bench: TensorFlow.js could not start its WebGPU backend');
    }
    await tf.ready();
    return tf;
  })();
  return loaded;
}

export interface PeerRun {
  beforeEach?: () => Promise<void>;
  run: () => Promise<void>;
  dispose: () => void;
}

async function settle(t: TfTensor): Promise<void> {
  await t.data();
  t.dispose();
}

/** tfjs runs of the workloads it has, by workload name. */
export const TFJS_PEERS: Record<string, (tf: Tf) => Promise<PeerRun>> = {
  async M1(tf) {
    const a = tf.randomNormal([1024, 1024], 0, 1, 'float32', 3);
    const b = tf.randomNormal([1024, 1024], 0, 1, 'float32', 4);
    return {
      run: () => settle(tf.matMul(a, b)),
      dispose: () => tf.dispose([a, b]),
    };
  },
  async W1(tf) {
    const x = tf.randomNormal([1, 64, 64, 64, 16], 0, 1, 'float32', 11);
    const w = tf.randomNormal([3, 3, 3, 16, 16], 0, 1, 'float32', 12);
    return {
      run: () => settle(tf.conv3d(x, w, 1, 'same')),
      dispose: () => tf.dispose([x, w]),
    };
  },
  async W2(tf) {
    const x = tf.randomNormal([1, 64, 64, 64, 16], 0, 1, 'float32', 11);
    const w = tf.randomNormal([3, 3, 3, 16, 16], 0, 1, 'float32', 12);
    const dy = tf.randomNormal([1, 64, 64, 64, 16], 0, 1, 'float32', 13);
    const strides = [1, 1, 1, 1, 1];
    return {
      // The two gradients of a 'same' convolution, as tfjs's own conv3d
      // gradient computes them.
      run: async () => {
        const dx = tf.engine().runKernel(
          'Conv3DBackpropInputV2',
          { dy, filter: w },
          { inputShape: x.shape, strides, pad: 'same' },
        );
        const dw = tf.engine().runKernel(
          'Conv3DBackpropFilterV2',
          { x, dy },
          { filterShape: w.shape, strides, pad: 'same' },
        );
        await Promise.all([settle(dx), settle(dw)]);
      },
      dispose: () => tf.dispose([x, w, dy]),
    };
  },
};
