// Optimizer: the state and bookkeeping shared by SGD and Adam. Updates run
// on the device, one dispatch per parameter per step, writing into the
// parameters' own storage, so optimisers never read values back.

import { zeros } from '../ops/creation.js';
import { formatShape, keep, type Tensor } from '../tensor.js';
import { sameShape } from '../ops/shape.js';
import { copyInto } from '../nn/copy.js';

export type OptionValue = number | boolean | readonly number[];

/**
 * Everything needed to resume an optimiser bit for bit: its options, the
 * step count of each parameter, and its state tensors.
 */
export interface OptimizerStateDict {
  /** Hyperparameters, for example { lr, betas, eps, weightDecay }. */
  options: Record<string, OptionValue>;
  /** Per parameter index, the number of steps that updated it. */
  steps: number[];
  /**
   * State tensors keyed "<parameter index>.<name>", for example
   * "0.exp_avg". From stateDict() they are handles on the live storage:
   * they see later steps, and disposing them leaves the optimiser intact.
   */
  tensors: Map<string, Tensor>;
}

export abstract class Optimizer {
  /** The parameters, in the order that stateDict() indexes them. */
  readonly params: readonly Tensor[];
  /**
   * Per parameter, the steps that updated it. A step skips a parameter
   * that has no gradient.
   */
  protected readonly steps: number[];
  /** Per parameter, its state tensors by name. */
  protected readonly state: Map<string, Tensor>[];

  constructor(
    protected readonly name: string,
    params: Iterable<Tensor>,
  ) {
    this.params = Object.freeze([...params]);
    if (this.params.length === 0) {
      throw new Error(`${name}: the parameter list is empty`);
    }
    const seen = new Set<Tensor>();
    this.params.forEach((p, i) => {
      if (p.gradFn || !p.requiresGrad) {
        throw new Error(
          `${name}: parameter ${i} of shape ${formatShape(p.shape)} is not ` +
            'a leaf tensor with requiresGrad true; optimise module ' +
            'parameters or tensors made with { requiresGrad: true }',
        );
      }
      if (seen.has(p)) {
        throw new Error(`${name}: parameter ${i} appears more than once`);
      }
      seen.add(p);
    });
    this.steps = this.params.map(() => 0);
    this.state = this.params.map(() => new Map());
  }

  /** Learning rate, read at every step (so a schedule can set it). */
  abstract get lr(): number;
  abstract set lr(value: number);

  /** Current hyperparameters, as stored by stateDict(). */
  abstract options(): Record<string, OptionValue>;

  /** Validates and applies hyperparameters from a state dict. */
  protected abstract applyOptions(options: Record<string, OptionValue>): void;

  /** Names of the state tensors a parameter has after `steps` steps. */
  protected abstract stateNames(steps: number): readonly string[];

  /** Records one update of every parameter that has a gradient. */
  abstract step(): void;

  /** Disposes every parameter's gradient and sets it to null. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Returns the gradient of parameter `index` after checking its shape and
   * storage, or null when backward() gave it none.
   */
  protected gradientOf(index: number): Tensor | null {
    const p = this.params[index];
    const grad = p.grad;
    if (!grad) return null;
    if (!sameShape(grad.shape, p.shape)) {
      throw new RangeError(
        `${this.name}.step: the gradient of parameter ${index} has shape ` +
          `${formatShape(grad.shape)}, expected the parameter's ` +
          formatShape(p.shape),
      );
    }
    if (grad.buffer(this.name) === p.buffer(this.name)) {
      throw new Error(
        `${this.name}.step: the gradient of parameter ${index} shares the ` +
          "parameter's storage, which an in-place update cannot read and write",
      );
    }
    return grad;
  }

  /**
   * Returns the state tensor `key` of parameter `index`, allocated as zeros
   * on first use.
   */
  protected stateTensor(index: number, key: string): Tensor {
    const tensors = this.state[index];
    let t = tensors.get(key);
    if (!t) {
      t = keep(zeros(this.params[index].shape));
      tensors.set(key, t);
    }
    return t;
  }

  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    this.state.forEach((entries, i) => {
      for (const [key, t] of entries) tensors.set(`${i}.${key}`, t.share());
    });
    return { options: this.options(), steps: [...this.steps], tensors };
  }

  /**
   * Restores options, step counts and state tensors (copied on the
   * device into this optimiser's own tensors). Checks everything first and
   * throws, loading nothing, when the parameter count, a key or a shape
   * does not match.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    const op = `${this.name}.loadStateDict`;
    if (dict.steps.length !== this.params.length) {
      throw new Error(
        `${op}: the state has ${dict.steps.length} parameters, this ` +
          `optimiser has ${this.params.length}`,
      );
    }
    // The saved options decide which state tensors must exist, so they
    // are applied first and restored when a check fails.
    const previous = this.options();
    this.applyOptions(dict.options);
    try {
      this.checkState(op, dict);
    } catch (err) {
      this.applyOptions(previous);
      throw err;
    }
    dict.steps.forEach((steps, i) => {
      this.steps[i] = steps;
      for (const t of this.state[i].values()) t.dispose();
      this.state[i].clear();
    });
    for (const [fullKey, source] of dict.tensors) {
      const dot = fullKey.indexOf('.');
      const index = Number(fullKey.slice(0, dot));
      const t = this.stateTensor(index, fullKey.slice(dot + 1));
      copyInto(op, t, source);
    }
  }

  private checkState(op: string, dict: OptimizerStateDict): void {
    const expected = new Map<string, Tensor>();
    dict.steps.forEach((steps, i) => {
      if (!Number.isInteger(steps) || steps < 0) {
        throw new RangeError(
          `${op}: step count ${steps} of parameter ${i} is invalid`,
        );
      }
      for (const key of this.stateNames(steps)) {
        expected.set(`${i}.${key}`, this.params[i]);
      }
    });
    const tensors = dict.tensors;
    const missing = [...expected.keys()].filter((key) => !tensors.has(key));
    const unexpected = [...tensors.keys()].filter((key) => !expected.has(key));
    const mismatched: string[] = [];
    for (const [key, param] of expected) {
      const t = tensors.get(key);
      if (t && !sameShape(t.shape, param.shape)) {
        mismatched.push(
          `${key} (state ${formatShape(t.shape)}, ` +
            `parameter ${formatShape(param.shape)})`,
        );
      }
    }
    const problems: string[] = [];
    if (missing.length > 0) {
      problems.push(`missing keys ${missing.join(', ')}`);
    }
    if (unexpected.length > 0) {
      problems.push(`unexpected keys ${unexpected.join(', ')}`);
    }
    if (mismatched.length > 0) {
      problems.push(`shape mismatch for ${mismatched.join(', ')}`);
    }
    if (problems.length > 0) {
      throw new Error(`${op}: ${problems.join('; ')}. Nothing was loaded.`);
    }
  }

  /** Disposes the state tensors (not the parameters). */
  dispose(): void {
    for (const entries of this.state) {
      for (const t of entries.values()) t.dispose();
      entries.clear();
    }
  }
}

/** Throws unless `value` is a finite number >= 0. */
export function checkNonNegative(
  op: string,
  name: string,
  value: number,
): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `${op}: ${name} must be a finite number >= 0, got ${value}`,
    );
  }
}
