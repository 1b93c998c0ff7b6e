// nn.Module: the base class of every network, with PyTorch's naming of
// parameters, buffers and submodules (`encoder.levels.0.conv1.weight`), so
// state dicts map one to one onto PyTorch checkpoints.
//
// Registration is explicit: a subclass calls this.param(), this.buffer(),
// this.module() and this.moduleList() in its constructor. Names keep the
// order of registration, and a module's own parameters and buffers come
// before those of its submodules, as in PyTorch.

import { formatShape, keep, type Tensor } from '../tensor.js';
import { sameShape } from '../ops/shape.js';
import { copyInto } from './copy.js';

/**
 * Marks `t` as a trainable parameter: a leaf tensor with requiresGrad true,
 * exempt from enclosing tidy() scopes. Throws when `t` was computed by a
 * tracked op, since a parameter must not depend on other tensors.
 */
export function parameter(t: Tensor, op = 'parameter'): Tensor {
  if (t.gradFn) {
    throw new Error(
      `${op}: tensor of shape ${formatShape(t.shape)} was computed by ` +
        `${t.gradFn.op}; a parameter must be a leaf tensor (create it with ` +
        'tensor() or an initialiser, or compute it under noGrad())',
    );
  }
  t.requiresGrad = true;
  return keep(t);
}

/** Result of Module.loadStateDict with strict false. */
export interface LoadStateDictResult {
  /** Keys the module expects that the state dict lacks. */
  missingKeys: string[];
  /** Keys of the state dict the module does not have. */
  unexpectedKeys: string[];
}

export interface LoadStateDictOptions {
  /**
   * Throw when keys are missing or unexpected (default true). Shape
   * mismatches throw either way, as in PyTorch.
   */
  strict?: boolean;
}

export interface BufferOptions {
  /** Include the buffer in stateDict() (default true). */
  persistent?: boolean;
}

const NAME_PATTERN = /^[^.]+$/;

export class Module {
  /** True in training mode (the default), false after eval(). */
  training = true;
  private readonly ownParameters = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly nonPersistent = new Set<string>();
  private readonly children = new Map<string, Module>();

  /** Class name used in error messages, for example "Linear". */
  get typeName(): string {
    return this.constructor.name;
  }

  private checkName(op: string, name: string): void {
    if (name.length === 0 || !NAME_PATTERN.test(name)) {
      throw new Error(
        `${this.typeName}.${op}: name "${name}" is invalid; names must be ` +
          'non-empty and contain no "."',
      );
    }
    if (
      this.ownParameters.has(name) ||
      this.ownBuffers.has(name) ||
      this.children.has(name)
    ) {
      throw new Error(
        `${this.typeName}.${op}: "${name}" is already registered`,
      );
    }
  }

  /**
   * Registers `t` as the parameter `name` and returns it, now a leaf with
   * requiresGrad true that tidy() scopes do not dispose.
   */
  param(name: string, t: Tensor): Tensor {
    this.checkName('param', name);
    parameter(t, `${this.typeName}.param("${name}")`);
    this.ownParameters.set(name, t);
    return t;
  }

  /**
   * Registers `t` as the buffer `name` (state that is not trained, such as
   * running statistics) and returns it. Persistent buffers are part of
   * stateDict().
   */
  buffer(name: string, t: Tensor, options: BufferOptions = {}): Tensor {
    this.checkName('buffer', name);
    this.ownBuffers.set(name, keep(t));
    if (options.persistent === false) this.nonPersistent.add(name);
    return t;
  }

  /** Registers `child` as the submodule `name` and returns it. */
  module<M extends Module>(name: string, child: M): M {
    this.checkName('module', name);
    if (!(child instanceof Module)) {
      throw new TypeError(
        `${this.typeName}.module: "${name}" is not a Module`,
      );
    }
    this.children.set(name, child);
    return child;
  }

  /**
   * Registers `items` as the submodule `name` holding them under "0",
   * "1", ..., so their parameters are named `name.0.weight` and so on.
   */
  moduleList<M extends Module>(
    name: string,
    items: readonly M[],
  ): ModuleList<M> {
    return this.module(name, new ModuleList(items));
  }

  /** Returns the direct submodules with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /**
   * Lists every module of the tree, this one first (named ""), in
   * depth-first registration order. A module reachable by two paths is
   * listed once.
   */
  namedModules(prefix = ''): [string, Module][] {
    const result: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (module: Module, name: string) => {
      if (seen.has(module)) return;
      seen.add(module);
      result.push([name, module]);
      for (const [childName, child] of module.children) {
        visit(child, joinName(name, childName));
      }
    };
    visit(this, prefix);
    return result;
  }

  /**
   * Lists every parameter of the tree with its dotted name, in the order
   * of namedModules(). A tensor registered twice (tied weights) is listed
   * once, under its first name.
   */
  namedParameters(): [string, Tensor][] {
    const result: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [moduleName, module] of this.namedModules()) {
      for (const [name, t] of module.ownParameters) {
        if (seen.has(t)) continue;
        seen.add(t);
        result.push([joinName(moduleName, name), t]);
      }
    }
    return result;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Lists every buffer of the tree with its dotted name, persistent or not. */
  namedBuffers(): [string, Tensor][] {
    const result: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [moduleName, module] of this.namedModules()) {
      for (const [name, t] of module.ownBuffers) {
        if (seen.has(t)) continue;
        seen.add(t);
        result.push([joinName(moduleName, name), t]);
      }
    }
    return result;
  }

  /** Number of parameter elements (tied weights counted once). */
  parameterCount(): number {
    let count = 0;
    for (const t of this.parameters()) count += t.size;
    return count;
  }

  /** The tensors stateDict() returns views of, by dotted name. */
  private stateEntries(): Map<string, Tensor> {
    const entries = new Map<string, Tensor>();
    const visit = (module: Module, prefix: string) => {
      for (const [name, t] of module.ownParameters) {
        entries.set(joinName(prefix, name), t);
      }
      for (const [name, t] of module.ownBuffers) {
        if (!module.nonPersistent.has(name)) {
          entries.set(joinName(prefix, name), t);
        }
      }
      for (const [name, child] of module.children) {
        visit(child, joinName(prefix, name));
      }
    };
    visit(this, '');
    return entries;
  }

  /**
   * Returns the parameters and persistent buffers by dotted name. Each
   * value is a new tensor handle on the live storage (no copy, no
   * gradient), so later updates show in it, and disposing it leaves the
   * module intact. Tied
   * weights appear under each of their names, as in PyTorch.
   */
  stateDict(): Map<string, Tensor> {
    const result = new Map<string, Tensor>();
    for (const [name, t] of this.stateEntries()) result.set(name, t.share());
    return result;
  }

  /**
   * Copies values from `state` into the existing parameters and buffers,
   * on the device, so optimisers keep their references. Checks every key
   * before copying anything: a shape mismatch throws, and in strict mode
   * (the default) so do missing and unexpected keys. The error lists each
   * offending key.
   */
  loadStateDict(
    state: ReadonlyMap<string, Tensor>,
    options: LoadStateDictOptions = {},
  ): LoadStateDictResult {
    const strict = options.strict ?? true;
    const entries = this.stateEntries();
    const missingKeys = [...entries.keys()].filter((key) => !state.has(key));
    const unexpectedKeys = [...state.keys()].filter((key) => !entries.has(key));
    const mismatches: string[] = [];
    for (const [key, target] of entries) {
      const source = state.get(key);
      if (source && !sameShape(source.shape, target.shape)) {
        mismatches.push(
          `${key} (state ${formatShape(source.shape)}, ` +
            `module ${formatShape(target.shape)})`,
        );
      }
    }
    const problems: string[] = [];
    if (mismatches.length > 0) {
      problems.push(`shape mismatch for ${mismatches.join(', ')}`);
    }
    if (strict && missingKeys.length > 0) {
      problems.push(`missing keys ${listKeys(missingKeys)}`);
    }
    if (strict && unexpectedKeys.length > 0) {
      problems.push(`unexpected keys ${listKeys(unexpectedKeys)}`);
    }
    if (problems.length > 0) {
      throw new Error(
        `${this.typeName}.loadStateDict: ${problems.join('; ')}. Nothing ` +
          'was loaded.',
      );
    }
    for (const [key, target] of entries) {
      const source = state.get(key);
      if (source) copyInto(`loadStateDict(${key})`, target, source);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and every submodule. */
  train(mode = true): this {
    for (const [, module] of this.namedModules()) module.training = mode;
    return this;
  }

  /** Sets evaluation mode (training false) on the whole tree. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Sets requiresGrad of every parameter, for example false to freeze a
   * pretrained teacher.
   */
  setRequiresGrad(requiresGrad: boolean): this {
    for (const t of this.parameters()) t.requiresGrad = requiresGrad;
    return this;
  }

  /** Disposes every parameter's gradient and sets it to null. */
  zeroGrad(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }

  /** Disposes every parameter (with its gradient) and buffer of the tree. */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
    for (const [, t] of this.namedBuffers()) t.dispose();
  }
}

/**
 * An indexed list of submodules, named "0", "1", ... like PyTorch's
 * nn.ModuleList. Iterable, with `length` and `at(index)`.
 */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: readonly M[];

  constructor(items: readonly M[]) {
    super();
    items.forEach((item, i) => this.module(String(i), item));
    this.items = Object.freeze([...items]);
  }

  get length(): number {
    return this.items.length;
  }

  /** Returns the item at `index`. Negative indices count from the end. */
  at(index: number): M {
    const item = this.items.at(index);
    if (item === undefined) {
      throw new RangeError(
        `ModuleList.at: index ${index} is out of range for ` +
          `${this.length} items`,
      );
    }
    return item;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

function joinName(prefix: string, name: string): string {
  return prefix.length > 0 ? `${prefix}.${name}` : name;
}

/** Keys listed in full in a loadStateDict error; the rest are counted. */
const LISTED_KEYS = 10;

/** Joins keys for an error message, the first LISTED_KEYS by name. */
function listKeys(keys: readonly string[]): string {
  const listed = keys.slice(0, LISTED_KEYS).join(', ');
  return keys.length > LISTED_KEYS ? `${listed} and ${keys.length - LISTED_KEYS} more` : listed;
}
