// The `nn` namespace: Module, parameters, initialisers and layers.

export { Module, ModuleList, parameter } from './module.js';
export type {
  BufferOptions,
  LoadStateDictOptions,
  LoadStateDictResult,
} from './module.js';
export * as init from './init.js';
export { Linear } from './linear.js';
export type { LinearOptions } from './linear.js';
