// Tensor creation: constants and seeded random values.

import { commandEncoder, dispatchRecorded } from '../device.js';
import { launch, workgroupsFor, type KernelSpec } from '../kernels/launch.js';
import { empty, tensor, type Tensor, type TensorOptions } from '../tensor.js';
import { Random } from '../random.js';

const FILL_SPEC: KernelSpec = {
  name: 'fill',
  uniforms: [
    ['size', 'u32'],
    ['value', 'f32'],
  ],
  bindings: [{ name: 'out', access: 'read_write' }],
};

/** @internal Overwrites every element of `t` with `value`. */
export function fillKernel(t: Tensor, value: number): void {
  if (value === 0) {
    // clearBuffer has no binding-size limit and skips the shader.
    commandEncoder('zeros').clearBuffer(t.buffer('zeros'), 0, Math.ceil(t.bytes / 4) * 4);
    dispatchRecorded();
    return;
  }
  launch(FILL_SPEC, {
    label: 'fill',
    uniforms: { size: t.size, value },
    buffers: [{ buffer: t.buffer('fill'), bytes: t.bytes }],
    workgroups: workgroupsFor(FILL_SPEC, t.size),
  });
}

/** Creates a tensor with every element equal to `value`. */
export function full(
  shape: readonly number[],
  value: number,
  options: TensorOptions = {},
): Tensor {
  const t = empty(shape, 'full');
  if (t.size > 0) fillKernel(t, value);
  t.requiresGrad = options.requiresGrad ?? false;
  return t;
}

export function zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}

/**
 * Standard normal values from a seeded generator (generated on the CPU and
 * uploaded), so the same seed gives the same tensor on every device.
 */
export function randn(
  shape: readonly number[],
  seed: number,
  options: TensorOptions = {},
): Tensor {
  const random = new Random(seed);
  const size = shape.reduce((n, d) => n * d, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = random.normal();
  return tensor(data, shape, options);
}

/** Uniform values in [low, high) from a seeded generator. */
export function rand(
  shape: readonly number[],
  seed: number,
  options: TensorOptions & { low?: number; high?: number } = {},
): Tensor {
  const random = new Random(seed);
  const low = options.low ?? 0;
  const high = options.high ?? 1;
  const size = shape.reduce((n, d) => n * d, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = low + (high - low) * random.uniform();
  return tensor(data, shape, options);
}
