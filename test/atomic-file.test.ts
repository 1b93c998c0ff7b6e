// writeFileAtomic's failures: the error names the target path and the
// reason, and no temporary file is left behind. unwritableReason's checks
// of a path before writing.

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unwritableReason, writeFileAtomic } from '../src/io/atomic-file.js';

// One temporary folder serves both suites.
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rrl-medsam-atomic-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('names the target when a parent is a file', async () => {
    const parent = join(work, 'a-file');
    await writeFile(parent, 'x');
    const target = join(parent, 'seg.nii.gz');
    const failure = writeFileAtomic(target, 'data');
    await expect(failure).rejects.toThrow(`cannot write ${target}: a part of its folder path is a file, not a folder`);
    await expect(failure).rejects.toHaveProperty('code', expect.stringMatching(/^(EEXIST|ENOTDIR)$/));
  });

  it('names the target, not the temporary file, when the target is a folder', async () => {
    const target = join(work, 'a-folder');
    await writeFileAtomic(join(target, 'inner.txt'), 'x');
    await expect(writeFileAtomic(target, 'data')).rejects.toThrow(`cannot write ${target}: `);
    expect((await readdir(work)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('unwritableReason', () => {
  it('accepts a path in folders not yet made', async () => {
    expect(await unwritableReason(join(work, 'new', 'deeper', 'seg.nii.gz'))).toBeNull();
  });

  it('names a parent that is a file', async () => {
    const parent = join(work, 'a-file');
    await writeFile(parent, 'x');
    expect(await unwritableReason(join(parent, 'more', 'seg.nii.gz'))).toBe(
      `a part of its folder path is a file, not a folder (${parent})`,
    );
  });

  it('rejects a folder as the target', async () => {
    expect(await unwritableReason(work)).toBe('it is a folder');
  });

  it('agrees with writeFileAtomic on a writable path', async () => {
    const target = join(work, 'out', 'report.json');
    expect(await unwritableReason(target)).toBeNull();
    await writeFileAtomic(target, '{}');
    expect(await readdir(join(work, 'out'))).toEqual(['report.json']);
  });
});
