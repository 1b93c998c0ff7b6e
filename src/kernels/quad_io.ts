// Generated WGSL that reads and writes a [.., W] volume one quad (4
// consecutive voxels of a row) at a time, for kernels that work on quads.
//
// When W % 4 == 0 the volume is bound as array<vec4<f32>> and a quad is one
// vec4 access; CPU adapters such as llvmpipe run a vec4 copy kernel about 10
// times faster than an f32 one. Otherwise the volume is bound as array<f32>
// and the lanes of a quad inside the row are accessed one by one, and lanes
// past W read as 0. Both forms need uniforms `width` (W) and `quads`
// (ceil(W / 4)).

import type { StorageElement } from './launch.js';

/** Element type to bind a volume with, vec4 when its rows are whole quads. */
export function volumeType(aligned: boolean): StorageElement {
  return aligned ? 'vec4<f32>' : 'f32';
}

/** WGSL `fn NAME(row: u32, quad: u32) -> vec4<f32>` reading `binding`. */
export function quadLoader(name: string, binding: string, aligned: boolean): string {
  if (aligned) {
    return [
      `fn ${name}(row: u32, quad: u32) -> vec4<f32> {`,
      `  return ${binding}[row * params.quads + quad];`,
      '}',
    ].join('\n');
  }
  return [
    `fn ${name}(row: u32, quad: u32) -> vec4<f32> {`,
    '  let first = row * params.width + quad * 4u;',
    '  let count = min(params.width - quad * 4u, 4u);',
    '  var value = vec4<f32>(0.0);',
    '  for (var j = 0u; j < count; j++) {',
    `    value[j] = ${binding}[first + j];`,
    '  }',
    '  return value;',
    '}',
  ].join('\n');
}

/** WGSL `fn NAME(row: u32, quad: u32, value: vec4<f32>)` writing the lanes inside the row. */
export function quadStorer(name: string, binding: string, aligned: boolean): string {
  if (aligned) {
    return [
      `fn ${name}(row: u32, quad: u32, value: vec4<f32>) {`,
      `  ${binding}[row * params.quads + quad] = value;`,
      '}',
    ].join('\n');
  }
  return [
    `fn ${name}(row: u32, quad: u32, value: vec4<f32>) {`,
    '  let first = row * params.width + quad * 4u;',
    '  let count = min(params.width - quad * 4u, 4u);',
    '  for (var j = 0u; j < count; j++) {',
    `    ${binding}[first + j] = value[j];`,
    '  }',
    '}',
  ].join('\n');
}
