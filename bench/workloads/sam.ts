// SAM-B and SAM-S: the SAM image encoder (the distillation teacher) on
// preprocessed slices, forward only without gradients, as the teacher
// runs. SAM-B is vit_b on one 1024x1024 slice (4096 tokens), SAM-S the
// small CPU config on a batch of 8 slices of 256x256 (256 tokens each).
// Each run prints its tokens per second and milliseconds per slice.
// The weights are randomly initialised, which does not change the work.
//
// SAM-S runs once untimed in preparation and waits for the matmul
// autotune, like M1. SAM-B is timed on a single cold run (kernels compile
// and the autotune runs during it), because one run takes minutes on a
// CPU adapter.

import {
  SamImageEncoder,
  matmulTuningSettled,
  noGrad,
  randn,
  samConfig,
  sync,
  type SamConfigName,
  type SamEncoderConfig,
} from '../../src/index.js';
import type { Workload } from '../harness.js';

/**
 * Estimates the floating-point operations of one slice through the
 * encoder: the patch embedding, qkv and proj on the (padded) windows or
 * the grid, the MLPs, q k^T and the weighted sum of v, and the neck. The
 * bias, softmax and normalisation terms are left out (under 1%).
 */
export function samEncoderFlops(
  config: SamEncoderConfig,
  imageSize: number,
): number {
  const c = config.embedDim;
  const grid = imageSize / config.patchSize;
  const tokens = grid * grid;
  const hidden = c * config.mlpRatio;
  const window = config.windowSize;
  const side = Math.ceil(grid / window) * window;
  let flops = 2 * tokens * c * 3 * config.patchSize ** 2;
  for (let i = 0; i < config.depth; i++) {
    const global = config.globalAttentionBlocks.includes(i);
    const attended = global ? tokens : side * side;
    const keys = global ? tokens : window * window;
    flops += 2 * attended * 4 * c * c; // qkv and proj
    flops += 2 * tokens * 2 * c * hidden; // lin1 and lin2
    flops += 4 * attended * keys * c; // q k^T and the sum over v
  }
  const out = config.outChannels;
  flops += 2 * tokens * (c * out + 9 * out * out);
  return flops;
}

function samWorkload(
  name: string,
  configName: SamConfigName,
  slices: number,
  iterations: number,
  warm: boolean,
): Workload {
  const config = samConfig(configName);
  const size = config.imageSize;
  const tokens = (size / config.patchSize) ** 2 * slices;
  return {
    name,
    summary:
      `SAM ${configName} encoder, ${slices} slice(s) of ${size}x${size}, ` +
      'forward without gradients',
    iterations,
    timeMs: 0,
    warmupIterations: 0,
    async prepare() {
      const started = performance.now();
      const encoder = new SamImageEncoder(config, { seed: 1 });
      encoder.eval().setRequiresGrad(false);
      const x = randn([slices, 3, size, size], 2);
      await sync();
      const built = (performance.now() - started) / 1000;
      const count = encoder.parameterCount();
      console.log(`  ${count} parameters, built in ${built.toFixed(1)} s`);
      if (warm) {
        noGrad(() => encoder.forward(x)).dispose();
        await sync();
        await matmulTuningSettled();
      }
      return {
        run: async () => {
          const begin = performance.now();
          const out = noGrad(() => encoder.forward(x));
          await sync();
          out.dispose();
          const ms = performance.now() - begin;
          console.log(
            `  ${((tokens / ms) * 1000).toFixed(0)} tokens/s, ` +
              `${(ms / slices).toFixed(0)} ms per slice`,
          );
        },
        flops: samEncoderFlops(config, size) * slices,
        dispose: () => {
          x.dispose();
          encoder.dispose();
        },
      };
    },
  };
}

/** vit_b at 1024: one slice, one cold timed run. */
export const samB = samWorkload('SAM-B', 'vit_b', 1, 1, false);

/** The small CPU teacher at 256: 8 slices per run, 3 timed warm runs. */
export const samS = samWorkload('SAM-S', 'small', 8, 3, true);
