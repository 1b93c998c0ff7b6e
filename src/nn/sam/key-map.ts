// Mapping from the official Segment Anything checkpoint names to ours, and
// loading of checkpoint tensors into SAM modules.
//
// The official checkpoints (sam_vit_b_01ec64.pth and the like) store one
// state dict for the whole model: image_encoder.*, prompt_encoder.* and
// mask_decoder.*. Our image encoder uses the same names without the
// `image_encoder.` prefix, and MaskPromptEncoder2d the names of
// prompt_encoder.mask_downscaling.*.

import { toFloat32, type HostTensor } from '../../io/host-tensor.js';
import { readSafetensors } from '../../io/safetensors.js';
import { readTorchCheckpoint } from '../../io/torch-checkpoint.js';
import {
  loadCheckpoint,
  mapCheckpointKey,
  type KeyMapping,
  type LoadReport,
} from '../../io/load-report.js';
import { tensor, type Tensor } from '../../tensor.js';
import type { Module } from '../module.js';
import { SAM_CONFIGS, samConfig, type SamEncoderConfig } from './config.js';

/**
 * Official SAM key -> SamImageEncoder name. Keys of the other parts of SAM
 * are dropped. Keys without a prefix pass unchanged, so a state dict of the
 * image encoder alone loads too.
 */
export const SAM_IMAGE_ENCODER_KEYS: KeyMapping = [
  [/^(prompt_encoder|mask_decoder)\./, null],
  [/^image_encoder\./, ''],
];

/**
 * Official SAM key -> MaskPromptEncoder2d name: the mask_downscaling
 * convolutions and LayerNorms of the prompt encoder; the rest of SAM is
 * dropped.
 */
export const SAM_MASK_PROMPT_KEYS: KeyMapping = [
  [/^(image_encoder|mask_decoder)\./, null],
  [/^prompt_encoder\.(?!mask_downscaling\.)/, null],
  [/^prompt_encoder\./, ''],
];

/**
 * Reads checkpoint bytes in either format the official and converted SAM
 * weights come in: a torch.save zip (.pth, which starts with the zip magic
 * "PK") or safetensors. Returns the tensors by their stored names.
 */
export function readSamCheckpoint(bytes: Uint8Array): Map<string, HostTensor> {
  const isZip = bytes.length >= 2 && bytes[0] === 0x50 && bytes[1] === 0x4b;
  return isZip ? readTorchCheckpoint(bytes) : readSafetensors(bytes);
}

export interface LoadWeightsOptions {
  mapping?: KeyMapping;
  /**
   * Load the tensors that match and report the rest instead of throwing
   * (default false: any missing, unexpected or misshapen key throws).
   */
  lenient?: boolean;
}

/**
 * Copies checkpoint tensors into `module` by name after `mapping`. Checks
 * every name and shape first (see loadCheckpoint), so nothing is loaded
 * when a strict load fails. Returns the report.
 */
export function loadWeights(
  module: Module,
  tensors: ReadonlyMap<string, HostTensor>,
  options: LoadWeightsOptions = {},
): LoadReport {
  const report = loadCheckpoint(module, tensors, {
    mapping: options.mapping,
    lenient: options.lenient,
  });
  const state = new Map<string, Tensor>();
  try {
    for (const [name, host] of report.matched) {
      state.set(name, tensor(toFloat32(host), host.shape));
    }
    module.loadStateDict(state, { strict: false });
  } finally {
    for (const t of state.values()) t.dispose();
  }
  return report;
}

/** Renames checkpoint tensors by `mapping`, leaving out dropped ones. */
function renamed(
  tensors: ReadonlyMap<string, HostTensor>,
  mapping: KeyMapping,
): Map<string, HostTensor> {
  const result = new Map<string, HostTensor>();
  for (const [key, value] of tensors) {
    const name = mapCheckpointKey(key, mapping);
    if (name !== null) result.set(name, value);
  }
  return result;
}

function requireShape(
  tensors: ReadonlyMap<string, HostTensor>,
  name: string,
  rank: number,
): number[] {
  const found = tensors.get(name);
  if (!found || found.shape.length !== rank) {
    throw new RangeError(
      `inferSamConfig: the checkpoint has no ${name} of rank ${rank} ` +
        `(found ${found ? `[${found.shape.join(',')}]` : 'nothing'}); is ` +
        'it a SAM image encoder?',
    );
  }
  return found.shape;
}

/**
 * Reads the encoder config from the shapes of a SAM checkpoint's image
 * encoder tensors (official names, prefixed or not). Returns the named
 * config (vit_b, vit_l, vit_h, ...) when the shapes match one, else a
 * config named 'checkpoint'.
 */
export function inferSamConfig(
  tensors: ReadonlyMap<string, HostTensor>,
  mapping: KeyMapping = SAM_IMAGE_ENCODER_KEYS,
): SamEncoderConfig {
  const named = renamed(tensors, mapping);
  const [dim, , patch] = requireShape(named, 'patch_embed.proj.weight', 4);
  let depth = 0;
  while (named.has(`blocks.${depth}.attn.qkv.weight`)) depth += 1;
  const [outChannels] = requireShape(named, 'neck.0.weight', 4);
  const [hidden] = requireShape(named, 'blocks.0.mlp.lin1.weight', 2);
  const pos = named.get('pos_embed');
  const relative = named.get('blocks.0.attn.rel_pos_h');
  // Without position tables, fall back on vit_b's values for the sizes
  // they would fix.
  const grid = pos ? pos.shape[1] : 64;
  const headDim = relative ? relative.shape[1] : 64;
  const globalBlocks: number[] = [];
  let windowSize = 0;
  for (let i = 0; i < depth; i++) {
    const table = named.get(`blocks.${i}.attn.rel_pos_h`);
    const span = table ? (table.shape[0] + 1) / 2 : grid;
    if (span === grid) globalBlocks.push(i);
    else windowSize = span;
  }
  const inferred: SamEncoderConfig = {
    ...SAM_CONFIGS.vit_b,
    name: 'checkpoint',
    imageSize: grid * patch,
    patchSize: patch,
    embedDim: dim,
    depth,
    heads: dim / headDim,
    mlpRatio: hidden / dim,
    outChannels,
    windowSize: windowSize === 0 ? 14 : windowSize,
    globalAttentionBlocks: globalBlocks,
    qkvBias: named.has('blocks.0.attn.qkv.bias'),
    useRelativePosition: relative !== undefined,
    useAbsolutePosition: pos !== undefined,
  };
  for (const config of Object.values(SAM_CONFIGS)) {
    if (sameConfig(config, inferred)) return samConfig(config);
  }
  return samConfig(inferred);
}

function sameConfig(a: SamEncoderConfig, b: SamEncoderConfig): boolean {
  const keys = Object.keys(a).filter((key) => key !== 'name');
  return keys.every((key) => {
    const left = a[key as keyof SamEncoderConfig];
    const right = b[key as keyof SamEncoderConfig];
    return JSON.stringify(left) === JSON.stringify(right);
  });
}
