// Which project a test file runs in: `node` (Dawn on the machine's Vulkan
// driver) or `browser` (headless Chromium on SwiftShader). Skip conditions
// use these flags, with a comment on why the test cannot run elsewhere.

/** True in the `browser` project: the test runs in a Chromium page. */
export const isBrowser =
  typeof window !== 'undefined' && typeof document !== 'undefined';

/** True in the `node` project. */
export const isNode =
  !isBrowser &&
  typeof process !== 'undefined' &&
  process.versions?.node !== undefined;

/**
 * Compares two typed arrays byte for byte, as Node's `Buffer.equals` does,
 * without Node's Buffer, so that bitwise checks run in both projects.
 */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const left = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const right = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (left.length !== right.length) return false;
  return left.every((byte, i) => byte === right[i]);
}
