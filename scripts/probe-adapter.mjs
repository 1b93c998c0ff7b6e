// Print the WebGPU adapter Dawn finds for Node, or exit 1 when there is none.
// Used by setup-gpu.sh to decide whether a driver must be installed.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
// The object from create() must outlive every adapter made from it (a Dawn
// bug crashes the process otherwise), so it stays referenced until exit.
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('no WebGPU adapter found');
  process.exit(1);
}
const info = adapter.info ?? {};
console.log(
  [info.vendor, info.architecture, info.device, info.description]
    .filter(Boolean)
    .join(' ') || 'unknown adapter',
);
globalThis.keepGpuAlive = gpu;
process.exit(0);
