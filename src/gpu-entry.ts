// The WebGPU entry point outside a browser bundle: `navigator.gpu` when the
// runtime has one, else Dawn from the `webgpu` package in Node. Browser builds replace this module with
// gpu-entry.browser.ts through the `browser` field of package.json (esbuild,
// vite and webpack honour it), so Dawn and `process` never reach a bundle.

// Dawn's GPU object from `create()` must stay strongly referenced while any
// adapter or device made from it lives: when it is garbage-collected the
// process later dies inside Dawn's event processing. Kept for the process.
let dawnGpu: GPU | null = null;

/** Help text: what to install or enable when no adapter or device works. */
export const ADAPTER_HELP =
  'On Debian or Ubuntu without a GPU, install the lavapipe Vulkan driver: ' +
  'run `npm run setup:gpu` as root (Debian bookworm takes ' +
  'mesa-vulkan-drivers from bookworm-backports). Elsewhere install the ' +
  "GPU's Vulkan, Metal or D3D12 driver.";

function navigatorGpu(): GPU | undefined {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
}

/**
 * Finds the WebGPU entry point, loading Dawn on first use in Node. Returns
 * null in a browser without `navigator.gpu`.
 */
export async function findGpu(): Promise<GPU | null> {
  const gpu = navigatorGpu();
  if (gpu) return gpu;
  const isNode =
    typeof process !== 'undefined' && process.versions?.node !== undefined;
  if (!isNode) return null;
  if (!dawnGpu) {
    // A variable specifier keeps bundlers that ignore the `browser` field
    // from pulling Dawn into browser code.
    const moduleName = 'webgpu';
    const dawn = (await import(/* @vite-ignore */ moduleName)) as {
      create: (flags: string[]) => GPU;
      globals: Record<string, unknown>;
    };
    Object.assign(globalThis, dawn.globals);
    dawnGpu = dawn.create([]);
  }
  return dawnGpu;
}

/**
 * Returns the entry point in use: `navigator.gpu`, else the Dawn instance
 * that `findGpu()` created, else null.
 */
export function foundGpu(): GPU | null {
  return navigatorGpu() ?? dawnGpu;
}
