// Tensor: float32 data in a GPU buffer, contiguous row-major, with a shape
// (NCDHW for volumes). Reshapes are views that share the storage.
//
// Memory: every tensor made inside tidy() is disposed when tidy returns,
// except the tensors it returns and those passed to keep(). Storage is
// reference-counted, so a view or a tensor saved for backward keeps the
// buffer alive after the tensor it came from is disposed.

import { flush, gpuDevice, sync } from './device.js';
import { BUFFER_USAGE, MAP_MODE_READ } from './gpu-constants.js';
import { acquireStorage, releaseStorage } from './pool.js';
import type { GradNode } from './autograd/node.js';

class Storage {
  refs = 1;
  /** Count of in-place writes; see Tensor.version. */
  version = 0;

  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}

  retain(): void {
    this.refs += 1;
  }

  release(): void {
    this.refs -= 1;
    if (this.refs === 0) releaseStorage(this.buffer);
  }
}

let nextId = 1;
let liveTensors = 0;
const scopes: Set<Tensor>[] = [];

/**
 * Hooks set by the autograd modules, which import this one: dropping a
 * node's reference on dispose, and running backward().
 */
export const tensorHooks: {
  onDispose: (t: Tensor) => void;
  backward: (t: Tensor, gradient?: Tensor) => void;
} = {
  onDispose: () => {},
  backward: () => {
    throw new Error('backward: the autograd module is not loaded');
  },
};

export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

function checkShape(op: string, shape: readonly number[]): void {
  for (const dim of shape) {
    if (!Number.isInteger(dim) || dim < 0) {
      throw new RangeError(
        `${op}: shape ${formatShape(shape)} must hold non-negative integers`,
      );
    }
  }
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after backward(). */
  grad: Tensor | null = null;
  /** The node that produced this tensor, for tensors built from tracked ops. */
  gradFn: GradNode | null = null;
  private storage: Storage | null;

  /** @internal Use tensor(), zeros() or an op to make tensors. */
  constructor(storage: Storage, shape: readonly number[], tracked = true) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    liveTensors += 1;
    if (tracked) scopes.at(-1)?.add(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  /** Returns the GPU buffer, or throws when the tensor was disposed. */
  buffer(op = 'tensor'): GPUBuffer {
    return this.liveStorage(op).buffer;
  }

  /**
   * Count of in-place writes to the storage (optimiser steps, emaUpdate,
   * loadStateDict), shared by every view of it. Autograd compares it with
   * the value a saved tensor had when its op was recorded.
   */
  get version(): number {
    return this.liveStorage('version').version;
  }

  /** @internal Records an in-place write to the storage. */
  markModified(): void {
    this.liveStorage('markModified').version += 1;
  }

  /** Bytes of this tensor's data (the buffer may be larger). */
  get bytes(): number {
    return this.size * 4;
  }

  private liveStorage(op: string): Storage {
    if (!this.storage) {
      throw new Error(
        `${op}: tensor #${this.id} of shape ${formatShape(this.shape)} was ` +
          'already disposed (used after dispose() or after its tidy() ended; ' +
          'return it from tidy() or keep() it to use it later)',
      );
    }
    return this.storage;
  }

  /** @internal A second tensor on the same storage, untracked by scopes. */
  share(shape: readonly number[] = this.shape, tracked = true): Tensor {
    const storage = this.liveStorage('share');
    storage.retain();
    return new Tensor(storage, shape, tracked);
  }

  /** Copies the data back to the CPU. Waits for all recorded work. */
  async toArray(): Promise<Float32Array> {
    const storage = this.liveStorage('toArray');
    const device = gpuDevice();
    const bytes = Math.max(4, this.bytes);
    const staging = device.createBuffer({
      size: bytes,
      usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST,
      label: 'readback',
    });
    // Keep the storage alive until the copy is submitted.
    storage.retain();
    const encoder = device.createCommandEncoder({ label: 'readback' });
    flush();
    encoder.copyBufferToBuffer(storage.buffer, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    storage.release();
    try {
      await staging.mapAsync(MAP_MODE_READ);
      await sync();
      const result = new Float32Array(staging.getMappedRange().slice(0, this.bytes));
      staging.unmap();
      return result;
    } finally {
      staging.destroy();
    }
  }

  /** Reads back the single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new Error(
        `item: tensor of shape ${formatShape(this.shape)} has ${this.size} ` +
          'elements, expected exactly 1',
      );
    }
    return (await this.toArray())[0];
  }

  /**
   * Computes gradients of this tensor (a scalar, unless `gradient` is
   * given) into `.grad` of the leaves it depends on.
   */
  backward(gradient?: Tensor): void {
    tensorHooks.backward(this, gradient);
  }

  /** Releases the tensor's reference to its storage. Safe to call twice. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    liveTensors -= 1;
    tensorHooks.onDispose(this);
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    return `Tensor #${this.id} ${formatShape(this.shape)}${this.requiresGrad ? ' requiresGrad' : ''}`;
  }
}

/** @internal Allocates an uninitialised tensor. */
export function empty(shape: readonly number[], op = 'empty'): Tensor {
  checkShape(op, shape);
  const bytes = shapeSize(shape) * 4;
  const buffer = acquireStorage(bytes);
  return new Tensor(new Storage(buffer, bytes), shape);
}

export interface TensorOptions {
  requiresGrad?: boolean;
}

/** Creates a tensor from values in row-major order. */
export function tensor(
  data: Float32Array | readonly number[],
  shape: readonly number[],
  options: TensorOptions = {},
): Tensor {
  checkShape('tensor', shape);
  const expected = shapeSize(shape);
  if (data.length !== expected) {
    throw new RangeError(
      `tensor: shape ${formatShape(shape)} needs ${expected} values, got ${data.length}`,
    );
  }
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  const t = empty(shape, 'tensor');
  if (values.length > 0) {
    gpuDevice().queue.writeBuffer(t.buffer(), 0, values.buffer, values.byteOffset, values.byteLength);
  }
  t.requiresGrad = options.requiresGrad ?? false;
  return t;
}

/** Number of tensors created and not yet disposed. */
export function liveTensorCount(): number {
  return liveTensors;
}

type Kept = Tensor | readonly Kept[] | { readonly [key: string]: Kept } | void | number | string | boolean | null | undefined;

function collect(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, into);
  else if (value && typeof value === 'object' && !(ArrayBuffer.isView(value))) {
    for (const v of Object.values(value)) collect(v, into);
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except the tensors found
 * in its result (also inside arrays and plain objects) and kept ones.
 * When `fn` throws, every tensor it created and did not keep is disposed.
 * `fn` must be synchronous: work after an `await` would escape the scope.
 */
export function tidy<T extends Kept>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    for (const t of scope) t.dispose();
    throw error;
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) {
    throw new Error('tidy: the function returned a Promise; tidy() takes synchronous functions only');
  }
  const kept = new Set<Tensor>();
  collect(result, kept);
  const parent = scopes.at(-1);
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Exempts a tensor from disposal by the enclosing tidy() scopes. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}
