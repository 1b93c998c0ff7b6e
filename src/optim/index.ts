// Optimisers and parameter averaging, updating parameters on the device.

export { Optimizer } from './optimizer.js';
export type { OptimizerStateDict, OptionValue } from './optimizer.js';
export { SGD } from './sgd.js';
export type { SgdOptions } from './sgd.js';
export { Adam, AdamW } from './adam.js';
export type { AdamOptions } from './adam.js';
export { emaUpdate } from './ema.js';
