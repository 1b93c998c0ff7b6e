// scripts/run-main.ts as the bench scripts use it: a bad command line exits
// 2 with the message and the usage but no stack, and --help prints the
// usage and exits 0 without running the script.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function runScript(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bench script command lines', () => {
  it('invalid argument exits 2 without a stack', () => {
    const { status, stderr } = runScript('bench/conv3d-shapes.ts', '--repeats', 'x');
    expect(status).toBe(2);
    expect(stderr).toContain('bench/conv3d-shapes: invalid argument --repeats x');
    expect(stderr).toContain('usage: npx tsx bench/conv3d-shapes.ts');
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  it('unknown shape names the shapes', () => {
    const { status, stderr } = runScript('bench/conv3d-shapes.ts', '--only', '4-4@48,nope');
    expect(status).toBe(2);
    expect(stderr).toContain('unknown shape nope');
    expect(stderr).toContain('shapes: 1-4@48');
  });

  it('help prints the usage and exits 0', () => {
    const { status, stdout } = runScript('bench/refine-settings.ts', '--help');
    expect(status).toBe(0);
    expect(stdout).toContain('usage: npx tsx bench/refine-settings.ts');
  });

  it('refine setting error is a usage error', () => {
    const { status, stderr } = runScript('bench/refine-settings.ts', '--setting', 'field:20:0.1:');
    expect(status).toBe(2);
    expect(stderr).toContain('--setting field:20:0.1: is not MODE:STEPS:LR:SMOOTHNESS');
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});
