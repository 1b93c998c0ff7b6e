// Stochastic gradient descent on the device, with PyTorch 1.13's update
// rules (torch.optim.SGD, single-tensor path).

import { sgdKernel } from '../kernels/sgd.js';
import { empty, keep, type Tensor } from '../tensor.js';
import {
  checkNonNegative,
  Optimizer,
  type OptionValue,
} from './optimizer.js';

export interface SgdOptions {
  /** Learning rate (required, as in PyTorch). */
  lr: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Nesterov momentum; needs momentum > 0 and dampening 0 (default false). */
  nesterov?: boolean;
}

type ResolvedSgdOptions = Required<SgdOptions>;

function resolveOptions(op: string, options: SgdOptions): ResolvedSgdOptions {
  const resolved: ResolvedSgdOptions = {
    lr: options.lr,
    momentum: options.momentum ?? 0,
    dampening: options.dampening ?? 0,
    weightDecay: options.weightDecay ?? 0,
    nesterov: options.nesterov ?? false,
  };
  checkNonNegative(op, 'lr', resolved.lr);
  checkNonNegative(op, 'momentum', resolved.momentum);
  checkNonNegative(op, 'weightDecay', resolved.weightDecay);
  if (!Number.isFinite(resolved.dampening)) {
    throw new RangeError(
      `${op}: dampening must be finite, got ${resolved.dampening}`,
    );
  }
  const { nesterov, momentum, dampening } = resolved;
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new RangeError(
      `${op}: nesterov needs momentum > 0 and dampening 0, got momentum ` +
        `${momentum} and dampening ${dampening}`,
    );
  }
  return resolved;
}

/**
 * SGD as torch.optim.SGD 1.13 computes it, per parameter p with gradient g:
 *   d = g + weightDecay * p
 *   with momentum: b = d on the first step,
 *     else b = momentum * b + (1 - dampening) * d,
 *     then d = d + momentum * b (nesterov) or d = b
 *   p = p - lr * d
 * Parameters without a gradient are skipped.
 * NOTE: all parameters share one set of options; PyTorch's parameter
 * groups are not supported (make one optimiser per group instead).
 */
export class SGD extends Optimizer {
  private settings: ResolvedSgdOptions;

  constructor(params: Iterable<Tensor>, options: SgdOptions) {
    super('SGD', params);
    this.settings = resolveOptions(this.name, options);
  }

  get lr(): number {
    return this.settings.lr;
  }

  set lr(value: number) {
    checkNonNegative(this.name, 'lr', value);
    this.settings = { ...this.settings, lr: value };
  }

  options(): Record<string, OptionValue> {
    return { ...this.settings };
  }

  protected applyOptions(options: Record<string, OptionValue>): void {
    this.settings = resolveOptions(
      `${this.name}.loadStateDict`,
      options as unknown as SgdOptions,
    );
  }

  protected stateNames(steps: number): readonly string[] {
    return steps > 0 && this.settings.momentum !== 0 ? ['momentum_buffer'] : [];
  }

  step(): void {
    const { momentum } = this.settings;
    this.params.forEach((param, i) => {
      const grad = this.gradientOf(i);
      if (!grad) return;
      this.steps[i] += 1;
      let buffer: Tensor | null = null;
      let firstStep = false;
      if (momentum !== 0) {
        buffer = this.state[i].get('momentum_buffer') ?? null;
        if (!buffer) {
          // Filled by the kernel with this step's gradient, as PyTorch
          // clones the gradient into a new buffer.
          buffer = keep(empty(param.shape, 'SGD.step'));
          this.state[i].set('momentum_buffer', buffer);
          firstStep = true;
        }
      }
      const scalars = { ...this.settings, firstStep };
      sgdKernel('SGD.step', param, grad, buffer, scalars);
      param.markModified();
    });
  }
}
