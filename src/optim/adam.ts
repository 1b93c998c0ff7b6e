// Adam and AdamW on the device, with PyTorch 1.13's update rules
// (torch.optim.Adam and torch.optim.AdamW, single-tensor path).

import { adamKernel } from '../kernels/adam.js';
import type { Tensor } from '../tensor.js';
import {
  checkNonNegative,
  Optimizer,
  type OptionValue,
} from './optimizer.js';

export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moment (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
  /**
   * Adam: L2 penalty added to the gradient. AdamW: decoupled decay, the
   * parameter is multiplied by 1 - lr * weightDecay before the update.
   * Default 0 for Adam, 0.01 for AdamW (PyTorch's defaults).
   */
  weightDecay?: number;
  /** Use the running maximum of the second moment (default false). */
  amsgrad?: boolean;
}

interface ResolvedAdamOptions {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

function resolveOptions(
  op: string,
  options: AdamOptions,
  defaultWeightDecay: number,
): ResolvedAdamOptions {
  const resolved: ResolvedAdamOptions = {
    lr: options.lr ?? 1e-3,
    betas: options.betas ?? [0.9, 0.999],
    eps: options.eps ?? 1e-8,
    weightDecay: options.weightDecay ?? defaultWeightDecay,
    amsgrad: options.amsgrad ?? false,
  };
  checkNonNegative(op, 'lr', resolved.lr);
  checkNonNegative(op, 'eps', resolved.eps);
  checkNonNegative(op, 'weightDecay', resolved.weightDecay);
  if (resolved.betas.length !== 2) {
    throw new RangeError(
      `${op}: betas must contain two values, got ${resolved.betas.length}`,
    );
  }
  resolved.betas.forEach((beta, i) => {
    if (!(beta >= 0 && beta < 1)) {
      throw new RangeError(`${op}: betas[${i}] must be in [0, 1), got ${beta}`);
    }
  });
  return resolved;
}

/** The shared implementation of Adam and AdamW. */
abstract class AdamBase extends Optimizer {
  protected settings: ResolvedAdamOptions;

  /** `decoupled` selects AdamW's decay instead of L2 in the gradient. */
  protected constructor(
    name: string,
    params: Iterable<Tensor>,
    options: AdamOptions,
    private readonly decoupled: boolean,
  ) {
    super(name, params);
    this.settings = resolveOptions(name, options, decoupled ? 0.01 : 0);
  }

  get lr(): number {
    return this.settings.lr;
  }

  set lr(value: number) {
    checkNonNegative(this.name, 'lr', value);
    this.settings = { ...this.settings, lr: value };
  }

  options(): Record<string, OptionValue> {
    return { ...this.settings, betas: [...this.settings.betas] };
  }

  protected applyOptions(options: Record<string, OptionValue>): void {
    this.settings = resolveOptions(
      `${this.name}.loadStateDict`,
      options as AdamOptions,
      this.settings.weightDecay,
    );
  }

  protected stateNames(steps: number): readonly string[] {
    if (steps === 0) return [];
    const names = ['exp_avg', 'exp_avg_sq'];
    if (this.settings.amsgrad) names.push('max_exp_avg_sq');
    return names;
  }

  step(): void {
    const { lr, betas, eps, weightDecay, amsgrad } = this.settings;
    const [beta1, beta2] = betas;
    this.params.forEach((param, i) => {
      const grad = this.gradientOf(i);
      if (!grad) return;
      this.steps[i] += 1;
      const step = this.steps[i];
      const biasCorrection1 = 1 - beta1 ** step;
      const biasCorrection2 = 1 - beta2 ** step;
      adamKernel(
        `${this.name}.step`,
        {
          param,
          grad,
          expAvg: this.stateTensor(i, 'exp_avg'),
          expAvgSq: this.stateTensor(i, 'exp_avg_sq'),
          maxExpAvgSq: amsgrad ? this.stateTensor(i, 'max_exp_avg_sq') : null,
        },
        {
          beta1,
          beta2,
          weightDecay: this.decoupled ? 0 : weightDecay,
          decayFactor: this.decoupled ? 1 - lr * weightDecay : 1,
          stepSizeNeg: -lr / biasCorrection1,
          biasCorrection2Sqrt: Math.sqrt(biasCorrection2),
          eps,
        },
      );
      param.markModified();
    });
  }
}

/**
 * Adam (Kingma and Ba) as torch.optim.Adam 1.13 computes it, per
 * parameter p with gradient g at step t:
 *   g = g + weightDecay * p
 *   m = beta1 * m + (1 - beta1) * g,  v = beta2 * v + (1 - beta2) * g^2
 *   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * With amsgrad, v in the last line is the running maximum of v. Parameters
 * without a gradient are skipped and keep their step count.
 * NOTE: all parameters share one set of options; PyTorch's parameter
 * groups are not supported (make one optimiser per group instead).
 */
export class Adam extends AdamBase {
  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    super('Adam', params, options, false);
  }
}

/**
 * AdamW (Loshchilov and Hutter) as torch.optim.AdamW 1.13 computes it:
 * p = p * (1 - lr * weightDecay) first, then the Adam update with the raw
 * gradient. weightDecay defaults to 0.01, as in PyTorch.
 */
export class AdamW extends AdamBase {
  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    super('AdamW', params, options, true);
  }
}
