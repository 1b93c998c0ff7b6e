// Browser variant of gpu-entry.ts, picked by bundlers through the `browser`
// field of package.json: the entry point is `navigator.gpu` and nothing
// else, so no Node global or Dawn import is reachable from a browser bundle.

/** Help text: what to install or enable when no adapter or device works. */
export const ADAPTER_HELP =
  'Check that hardware acceleration is on and that chrome://gpu (or the ' +
  "browser's equivalent) lists WebGPU as available. Headless Chromium " +
  'without a GPU needs --enable-unsafe-webgpu and a software adapter ' +
  '(--use-webgpu-adapter=swiftshader).';

function navigatorGpu(): GPU | null {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu ?? null;
}

/** Returns `navigator.gpu`, or null when the browser has no WebGPU. */
export async function findGpu(): Promise<GPU | null> {
  return navigatorGpu();
}

/** Returns the entry point in use: `navigator.gpu`, or null without one. */
export function foundGpu(): GPU | null {
  return navigatorGpu();
}
