// Node-only helper that writes PNG bytes to a file atomically.

import { writeFailureReason, writeFileAtomic } from '../io/atomic-file.js';

/**
 * Writes PNG bytes to `path` through a temporary file in the same
 * directory, flushed and then renamed over `path`, so readers never see a
 * partly written image.
 */
export async function writePngFile(
  path: string,
  png: Uint8Array,
): Promise<void> {
  if (!path.toLowerCase().endsWith('.png')) {
    throw new Error(`writePngFile: ${path}: file name must end in .png`);
  }
  try {
    await writeFileAtomic(path, png);
  } catch (error) {
    throw new Error(`${path}: write failed: ${writeFailureReason(error)}`, {
      cause: error,
    });
  }
}
