// Tape autograd: each differentiable op records a GradNode on its output.
//
// A node keeps its inputs (for the graph walk) and the tensors its backward
// rule needs. Saved tensors are extra references to storage, so disposing
// the original tensor does not free them. A node's saved tensors are freed
// once backward() has used them, or once nothing can reach the node any
// more: its output is disposed and every node built on it is gone.

import { formatShape, tensorHooks, type Tensor } from '../tensor.js';

export type BackwardRule = (
  grad: Tensor,
  saved: readonly Tensor[],
) => readonly (Tensor | null)[];

export class GradNode {
  /** Output tensor alive, plus one per live node that takes the output. */
  refs = 1;
  released = false;
  /** Tensor.version of each saved tensor when the op was recorded. */
  readonly savedVersions: readonly number[];

  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    readonly saved: readonly Tensor[],
    readonly backward: BackwardRule,
    readonly outputShape: readonly number[],
  ) {
    this.savedVersions = saved.map((t) => t.version);
  }

  /** Throws when a saved tensor was written in place since recording. */
  checkSavedVersions(): void {
    this.saved.forEach((t, i) => {
      if (t.version === this.savedVersions[i]) return;
      throw new Error(
        `backward: a tensor of shape ${formatShape(t.shape)} saved by ` +
          `${this.op} was modified in place after the forward pass ` +
          `(version ${t.version}, saved at ${this.savedVersions[i]}), for ` +
          'example by an optimiser step or emaUpdate; call backward() ' +
          'before updating the parameters, or run the forward pass again',
      );
    });
  }

  /** Frees saved tensors and drops this node's hold on its inputs' nodes. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.saved) t.dispose();
    for (const input of this.inputs) {
      if (input.gradFn) unrefNode(input.gradFn);
    }
  }
}

/** @internal Drops one reference; releases the node at zero. */
export function unrefNode(node: GradNode): void {
  node.refs -= 1;
  if (node.refs === 0) node.release();
}

tensorHooks.onDispose = (t: Tensor) => {
  if (t.gradFn) unrefNode(t.gradFn);
};

let gradDisabled = 0;

/** True unless inside noGrad(). */
export function isGradEnabled(): boolean {
  return gradDisabled === 0;
}

/** Runs `fn` without recording operations for backward. */
export function noGrad<T>(fn: () => T): T {
  gradDisabled += 1;
  try {
    return fn();
  } finally {
    gradDisabled -= 1;
  }
}

/**
 * Records `output = op(inputs)` on the tape when any input requires a
 * gradient. `saved` are the tensors the backward rule reads; they are kept
 * alive until the node is used or unreachable. `backward` returns one
 * gradient per input (null where none flows), each of the input's shape.
 */
export function record(
  op: string,
  output: Tensor,
  inputs: readonly Tensor[],
  saved: readonly Tensor[],
  backward: BackwardRule,
): Tensor {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return output;
  for (const input of inputs) {
    if (input.gradFn) {
      if (input.gradFn.released) {
        throw new Error(
          `${op}: input of shape ${formatShape(input.shape)} comes from ` +
            `${input.gradFn.op}, whose graph was already freed by backward(); ` +
            'recompute it before using it again',
        );
      }
      input.gradFn.refs += 1;
    }
  }
  const kept = saved.map((t) => t.share(t.shape, false));
  output.requiresGrad = true;
  output.gradFn = new GradNode(op, inputs, kept, backward, output.shape);
  return output;
}
