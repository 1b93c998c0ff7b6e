// Node-only NIfTI file helpers. Browsers use readNifti and writeNifti on
// byte arrays instead.

import { readFile, stat } from 'node:fs/promises';
import { writeFailureReason, writeFileAtomic } from '../io/atomic-file.js';
import { readNifti } from './nifti.js';
import { MAX_INPUT_BYTES, NiftiError } from './nifti-types.js';
import { writeNifti, type WriteNiftiOptions } from './nifti-write.js';
import type { Volume } from './volume.js';

/** Reads a .nii or .nii.gz file; errors name the path. */
export async function readNiftiFile(path: string): Promise<Volume> {
  let bytes: Uint8Array;
  try {
    // Node's readFile rejects files of 2 GiB or more with a RangeError, so
    // the size is checked first.
    const info = await stat(path);
    if (!info.isFile()) {
      throw new NiftiError(path, 'not a regular file');
    }
    if (info.size > MAX_INPUT_BYTES) {
      throw new NiftiError(
        path,
        `file has ${info.size} bytes; the reader accepts at most ` +
          `${MAX_INPUT_BYTES}`,
      );
    }
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    if (error instanceof NiftiError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'file not found' : `read failed: ${String(error)}`;
    throw new NiftiError(path, reason, { cause: error });
  }
  return readNifti(bytes, { name: path });
}

/**
 * Writes a volume to `path`, gzip-compressed when the name ends in .nii.gz
 * and plain for .nii, creating the parent directory when it is missing.
 * The bytes go to a temporary file in the same directory, which is flushed
 * to disk and then renamed over `path`, so readers never see a partly
 * written file.
 */
export async function writeNiftiFile(
  path: string,
  volume: Volume,
  options: Omit<WriteNiftiOptions, 'gzip'> = {},
): Promise<void> {
  const lower = path.toLowerCase();
  const gzip = lower.endsWith('.nii.gz');
  if (!gzip && !lower.endsWith('.nii')) {
    throw new NiftiError(path, 'file name must end in .nii or .nii.gz');
  }
  const bytes = writeNifti(volume, { ...options, gzip });

  try {
    await writeFileAtomic(path, bytes);
  } catch (error) {
    throw new NiftiError(path, `write failed: ${writeFailureReason(error)}`, {
      cause: error,
    });
  }
}
