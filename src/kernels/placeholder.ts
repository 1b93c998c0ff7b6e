// A 16-byte storage buffer bound where a kernel variant declares a binding
// it never reads (WebGPU requires every binding of the layout to be bound).

import { gpuDevice } from '../device.js';
import { BUFFER_USAGE } from '../gpu-constants.js';

let placeholder: { device: GPUDevice; buffer: GPUBuffer } | null = null;

/** Returns the current device's placeholder buffer, made on first use. */
export function placeholderBuffer(): { buffer: GPUBuffer; bytes: number } {
  const device = gpuDevice();
  if (placeholder?.device !== device) {
    const buffer = device.createBuffer({
      size: 16,
      usage: BUFFER_USAGE.STORAGE,
      label: 'unused binding',
    });
    placeholder = { device, buffer };
  }
  return { buffer: placeholder.buffer, bytes: 16 };
}
