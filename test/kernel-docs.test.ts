// docs/kernels.md against the kernel specs: the generated tables, the
// table of kernels and the header comments of the .wgsl files.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { launchedKernelVariants } from '../src/kernels/launch.js';
import {
  DOC_PATH,
  exerciseKernels,
  generatedSection,
  headerComment,
  kernelSourceNames,
  missingKernelForms,
  renderKernelTables,
} from '../scripts/kernel-docs.js';

const doc = readFileSync(DOC_PATH, 'utf8');

beforeAll(exerciseKernels, 300_000);

describe('kernel reference', () => {
  it('kernel docs every kernel launched', (context) => {
    // Devices without subgroups of 8 cannot launch the subgroup forms.
    if (missingKernelForms() !== null) context.skip();
    const launched = [...launchedKernelVariants().keys()].sort();
    expect(launched).toEqual(kernelSourceNames());
  });

  it('kernel docs tables match the specs', (context) => {
    if (missingKernelForms() !== null) context.skip();
    const current = generatedSection(doc);
    expect(current, 'docs/kernels.md lacks its GENERATED marks').not.toBeNull();
    // On failure run `npx tsx scripts/kernel-docs.ts --write` and review the diff.
    expect(current).toBe(renderKernelTables());
  });

  it('kernel docs table lists every kernel', () => {
    const table = doc.slice(
      doc.indexOf('## Kernels and the ops they serve'),
      doc.indexOf('## Kernel tables'),
    );
    const listed = [...table.matchAll(/^\| `([\w-]+)` \|/gm)].map((m) => m[1]).sort();
    expect(listed).toEqual(kernelSourceNames());
  });

  it('kernel headers name every binding', () => {
    for (const [name, specs] of launchedKernelVariants()) {
      const header = headerComment(name).join('\n');
      for (const spec of specs) {
        for (const binding of spec.bindings) {
          expect(header, `${name}.wgsl header`).toMatch(new RegExp(`\\b${binding.name}\\b`));
        }
      }
    }
  });
});
