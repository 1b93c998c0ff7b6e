// Node-only helper that writes PNG bytes to a file atomically.

import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

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
  const suffix = randomBytes(6).toString('hex');
  const temporary = join(dirname(path), `.${basename(path)}.${suffix}.tmp`);
  try {
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(png);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new Error(`writePngFile: ${path}: write failed: ${String(error)}`, {
      cause: error,
    });
  }
}
