// backward(): walks the tape from a tensor to the leaves and accumulates
// gradients into `.grad` of every leaf that requires one.

import { full } from '../ops/creation.js';
import { binaryKernel } from '../ops/elementwise.js';
import { formatShape, keep, tensorHooks, tidy, type Tensor } from '../tensor.js';
import { noGrad, unrefNode, type GradNode } from './node.js';
import { sameShape } from '../ops/shape.js';

function topologicalOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const visited = new Set<GradNode>();
  // Iterative depth-first search: deep networks would overflow recursion.
  const stack: [GradNode, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, next] = top;
    if (next < node.inputs.length) {
      top[1] += 1;
      const child = node.inputs[next].gradFn;
      if (child && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(node);
      stack.pop();
    }
  }
  return order.reverse();
}

function accumulate(existing: Tensor | undefined, incoming: Tensor): Tensor {
  if (!existing) return incoming;
  const total = binaryKernel('accumulateGrad', 'x + y', existing, incoming);
  existing.dispose();
  incoming.dispose();
  return total;
}

/**
 * Computes gradients of `output` with respect to every leaf tensor that
 * requires a gradient, adding them to the leaves' `.grad`. `output` must be
 * a single element unless `gradient` (of output's shape) is given. The
 * graph's saved tensors are freed as it goes, so each graph supports one
 * backward pass.
 */
export function backward(output: Tensor, gradient?: Tensor): void {
  if (!output.requiresGrad) {
    throw new Error(
      `backward: tensor of shape ${formatShape(output.shape)} does not ` +
        'require a gradient (no input of the ops that made it has requiresGrad)',
    );
  }
  if (!gradient && output.size !== 1) {
    throw new Error(
      `backward: tensor of shape ${formatShape(output.shape)} is not a ` +
        'scalar; pass the upstream gradient explicitly',
    );
  }
  if (gradient && !sameShape(gradient.shape, output.shape)) {
    throw new RangeError(
      `backward: gradient of shape ${formatShape(gradient.shape)} does not ` +
        `match the output's shape ${formatShape(output.shape)}`,
    );
  }
  noGrad(() =>
    tidy(() => {
      const seed = gradient ? gradient.share() : full(output.shape, 1);
      if (!output.gradFn) {
        output.grad = keep(accumulate(output.grad ?? undefined, seed));
        return;
      }
      runTape(output.gradFn, seed);
    }),
  );
}

function runTape(root: GradNode, seed: Tensor): void {
  const pending = new Map<GradNode, Tensor>([[root, seed]]);
  const order = topologicalOrder(root);
  // Releasing a processed node drops its references on its inputs' nodes.
  // Holding one extra reference on every node for the walk keeps nodes
  // that are still to be processed from being released early.
  for (const node of order) node.refs += 1;
  try {
    walk(order, pending);
  } finally {
    for (const node of order) unrefNode(node);
    for (const g of pending.values()) g.dispose();
  }
}

function walk(order: GradNode[], pending: Map<GradNode, Tensor>): void {
  for (const node of order) {
    const g = pending.get(node);
    pending.delete(node);
    if (!g) continue;
    if (node.released) {
      throw new Error(
        `backward: the graph through ${node.op} was already used by an ` +
          'earlier backward() and its saved tensors are freed; run the ' +
          'forward pass again',
      );
    }
    node.checkSavedVersions();
    const grads = node.backward(g, node.saved);
    const owned = new Set<Tensor>([g]);
    node.inputs.forEach((input, i) => {
      let grad = grads[i];
      if (!grad || !input.requiresGrad) return;
      if (!sameShape(grad.shape, input.shape)) {
        throw new Error(
          `backward: ${node.op} returned a gradient of shape ` +
            `${formatShape(grad.shape)} for an input of shape ${formatShape(input.shape)}`,
        );
      }
      // One tensor may be the gradient of several inputs: give each its own
      // handle so disposing one accumulation cannot free another's.
      if (owned.has(grad)) grad = grad.share();
      owned.add(grad);
      if (input.gradFn) {
        pending.set(input.gradFn, accumulate(pending.get(input.gradFn), grad));
      } else {
        input.grad = keep(accumulate(input.grad ?? undefined, grad));
      }
    });
    g.dispose();
    node.release();
  }
}

tensorHooks.backward = backward;
