// Procedural brain-like T1 phantoms with exact label maps, for tests with
// known results and as the browser demo's offline default. A fixed
// template of nested shapes (scalp, skull, CSF, folded cortex, white
// matter, ventricles, deep nuclei, brain stem, cerebellum) is warped per
// subject by a random affine and a smooth random displacement, so two
// seeds differ like two subjects. The labels are the template's regions at
// each voxel centre; the image adds partial-volume blur, a smooth bias
// field and Rician noise.

import { Random } from '../random.js';
import { createVolume, type Volume } from './volume.js';

export interface PhantomOptions {
  /** Voxels [D, H, W] (nz, ny, nx) or one number for a cube. */
  size: number | [number, number, number];
  seed: number;
  /**
   * Number of labelled structures K (1 to 16, default 16). Labels above K
   * merge into their parent region, following `PHANTOM_LABELS`.
   */
  structures?: number;
  /**
   * Voxel size in mm. By default 220 mm divided by the size along each
   * axis, so the head fits and a cube has isotropic voxels.
   */
  spacingMm?: number | [number, number, number];
  /** Multiplicative smooth bias field (default true). */
  bias?: boolean;
  /** Rician noise with sigma 3% of white matter (default true). */
  noise?: boolean;
}

export interface Phantom {
  /** T1-like intensities, white matter near 1000. */
  image: Volume;
  /** Label ids 0..K at each voxel centre. */
  labels: Volume;
  /** `names[id]` of each label id 0..K. */
  names: string[];
}

/**
 * The phantom's regions in label order, with the T1 intensity of each and
 * the region it merges into when `structures` is below its id.
 */
export const PHANTOM_LABELS: readonly {
  name: string;
  intensity: number;
  parent: number;
}[] = [
  { name: 'background', intensity: 0, parent: 0 },
  { name: 'white matter', intensity: 1000, parent: 0 },
  { name: 'grey matter', intensity: 620, parent: 1 },
  { name: 'CSF', intensity: 200, parent: 0 },
  { name: 'lateral ventricle L', intensity: 170, parent: 3 },
  { name: 'lateral ventricle R', intensity: 170, parent: 3 },
  { name: 'thalamus L', intensity: 800, parent: 2 },
  { name: 'thalamus R', intensity: 800, parent: 2 },
  { name: 'caudate L', intensity: 680, parent: 2 },
  { name: 'caudate R', intensity: 680, parent: 2 },
  { name: 'putamen L', intensity: 720, parent: 2 },
  { name: 'putamen R', intensity: 720, parent: 2 },
  { name: 'third ventricle', intensity: 170, parent: 3 },
  { name: 'brain stem', intensity: 900, parent: 1 },
  { name: 'cerebellum', intensity: 700, parent: 2 },
  { name: 'skull', intensity: 120, parent: 0 },
  { name: 'scalp', intensity: 780, parent: 0 },
];

const LABEL = {
  wm: 1,
  gm: 2,
  csf: 3,
  ventricleL: 4,
  ventricleR: 5,
  thalamusL: 6,
  thalamusR: 7,
  caudateL: 8,
  caudateR: 9,
  putamenL: 10,
  putamenR: 11,
  thirdVentricle: 12,
  brainStem: 13,
  cerebellum: 14,
  skull: 15,
  scalp: 16,
} as const;

const MAX_STRUCTURES = PHANTOM_LABELS.length - 1;

// Semi-axes of the head (outer scalp surface) in mm, RAS, centred at 0.
const HEAD_MM = [74, 94, 84];
// Side of the cubic field of view, which fits the head after the largest
// subject scaling and shift.
const FIELD_OF_VIEW_MM = 220;

/** An ellipsoid region: centre and semi-axes in template mm. */
interface Ellipsoid {
  centre: [number, number, number];
  radii: [number, number, number];
  label: number;
}

// Deep structures, checked in this order inside the brain.
const DEEP: Ellipsoid[] = [
  { centre: [0, -4, 2], radii: [1.8, 11, 8], label: LABEL.thirdVentricle },
  { centre: [-9, 0, 12], radii: [8, 26, 10], label: LABEL.ventricleL },
  { centre: [9, 0, 12], radii: [8, 26, 10], label: LABEL.ventricleR },
  { centre: [-10, -12, 2], radii: [7, 11, 7], label: LABEL.thalamusL },
  { centre: [10, -12, 2], radii: [7, 11, 7], label: LABEL.thalamusR },
  { centre: [-15, 12, 10], radii: [4.5, 10, 7], label: LABEL.caudateL },
  { centre: [15, 12, 10], radii: [4.5, 10, 7], label: LABEL.caudateR },
  { centre: [-25, 4, 2], radii: [5, 13, 9], label: LABEL.putamenL },
  { centre: [25, 4, 2], radii: [5, 13, 9], label: LABEL.putamenR },
  { centre: [0, -20, -34], radii: [10, 11, 26], label: LABEL.brainStem },
  { centre: [0, -52, -34], radii: [46, 24, 19], label: LABEL.cerebellum },
];

/** Per-subject random parameters, all drawn from the seed. */
interface Subject {
  /** Maps world mm to template mm (inverse of the subject's affine). */
  worldToTemplate: Float64Array;
  /** Smooth displacement modes: wave vector, phase and amplitude. */
  modes: { wave: number[]; phase: number; amplitude: number[] }[];
  /** Tissue intensity factors, one per label. */
  contrast: Float64Array;
  /** Bias field coefficients of 1, x, y, z, x^2, y^2, z^2, xy (scaled). */
  bias: number[];
}

/**
 * Generates a phantom subject. Deterministic: the same options give the
 * same volumes on every platform. The volume is RAS with its centre at the
 * world origin; with the default spacing a 64^3 phantom has 3.4 mm voxels.
 */
export function makePhantom(options: PhantomOptions): Phantom {
  const source = 'makePhantom';
  const [d, h, w] =
    typeof options.size === 'number'
      ? [options.size, options.size, options.size]
      : options.size;
  const dims = [w, h, d];
  if (!dims.every((n) => Number.isInteger(n) && n >= 1)) {
    throw new Error(
      `${source}: size [${[d, h, w].join(', ')}] must be positive integers ` +
        `[D, H, W]`,
    );
  }
  const structures = options.structures ?? MAX_STRUCTURES;
  if (!Number.isInteger(structures) || structures < 1 || structures > MAX_STRUCTURES) {
    throw new Error(
      `${source}: structures ${structures} must be an integer from 1 to ` +
        `${MAX_STRUCTURES}`,
    );
  }
  const spacing = phantomSpacing(dims, options.spacingMm, source);
  const affine = new Float64Array(16);
  for (let axis = 0; axis < 3; axis++) {
    affine[axis * 5] = spacing[axis];
    affine[12 + axis] = (-spacing[axis] * (dims[axis] - 1)) / 2;
  }
  affine[15] = 1;

  const random = new Random(options.seed);
  const subject = drawSubject(random);
  const labels = labelVoxels(dims, affine, subject);
  const image = renderImage(labels, dims, affine, subject, random, options);
  const merged = mergeLabels(labels, structures);

  const imageVolume = createVolume(image, dims, affine);
  imageVolume.description = `phantom seed ${options.seed}`;
  const labelVolume = createVolume(merged, dims, affine);
  labelVolume.datatype = 'uint8';
  labelVolume.description = `phantom labels seed ${options.seed}`;
  const names = PHANTOM_LABELS.slice(0, structures + 1).map(
    (label) => label.name,
  );
  return { image: imageVolume, labels: labelVolume, names };
}

function phantomSpacing(
  dims: number[],
  spacingMm: PhantomOptions['spacingMm'],
  source: string,
): [number, number, number] {
  if (spacingMm === undefined) {
    return [
      FIELD_OF_VIEW_MM / dims[0],
      FIELD_OF_VIEW_MM / dims[1],
      FIELD_OF_VIEW_MM / dims[2],
    ];
  }
  const spacing: [number, number, number] =
    typeof spacingMm === 'number'
      ? [spacingMm, spacingMm, spacingMm]
      : [...spacingMm];
  if (!spacing.every((value) => value > 0 && Number.isFinite(value))) {
    throw new Error(
      `${source}: spacingMm [${spacing.join(', ')}] must be positive`,
    );
  }
  return spacing;
}

function drawSubject(random: Random): Subject {
  // Subject affine: scaling per axis (head size and shape), a small
  // rotation about each axis, and a shift of a few mm.
  const scale = [0, 1, 2].map(() => 1 + 0.05 * clampedNormal(random));
  const angles = [0, 1, 2].map(() => 0.06 * clampedNormal(random));
  const shift = [0, 1, 2].map(() => 3 * clampedNormal(random));
  const rotation = rotationMatrix(angles);
  // Forward: world = rotation * (scale * template) + shift, as a 3x3
  // matrix M = rotation * diag(scale); the inverse is diag(1/scale) *
  // rotation^T.
  const worldToTemplate = new Float64Array(12);
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 3; column++) {
      worldToTemplate[row * 4 + column] =
        rotation[column * 3 + row] / scale[row];
    }
    let offset = 0;
    for (let column = 0; column < 3; column++) {
      offset -= worldToTemplate[row * 4 + column] * shift[column];
    }
    worldToTemplate[row * 4 + 3] = offset;
  }

  // Smooth displacement: 6 plane waves with wavelengths of 70 to 160 mm
  // and amplitudes up to about 3 mm per component.
  const modes: Subject['modes'] = [];
  for (let mode = 0; mode < 6; mode++) {
    const direction = unitVector(random);
    const wavelength = 70 + 90 * random.uniform();
    const wave = direction.map((value) => (2 * Math.PI * value) / wavelength);
    const phase = 2 * Math.PI * random.uniform();
    const amplitude = [0, 1, 2].map(() => 1.5 * clampedNormal(random));
    modes.push({ wave, phase, amplitude });
  }

  const contrast = new Float64Array(PHANTOM_LABELS.length);
  for (let label = 0; label < contrast.length; label++) {
    contrast[label] = 1 + 0.03 * clampedNormal(random);
  }
  const bias = [0, 1, 2, 3, 4, 5, 6, 7].map(() => 0.07 * clampedNormal(random));
  return { worldToTemplate, modes, contrast, bias };
}

/** Draws a standard normal number clipped to [-2.5, 2.5]. */
function clampedNormal(random: Random): number {
  return Math.max(-2.5, Math.min(2.5, random.normal()));
}

function unitVector(random: Random): number[] {
  const vector = [random.normal(), random.normal(), random.normal()];
  const length = Math.hypot(...vector) || 1;
  return vector.map((value) => value / length);
}

/** Row-major 3x3 rotation Rz * Ry * Rx for angles in radians. */
function rotationMatrix([ax, ay, az]: number[]): Float64Array {
  const [cx, sx] = [Math.cos(ax), Math.sin(ax)];
  const [cy, sy] = [Math.cos(ay), Math.sin(ay)];
  const [cz, sz] = [Math.cos(az), Math.sin(az)];
  return Float64Array.of(
    cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx,
    sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx,
    -sy, cy * sx, cy * cx,
  );
}

/** Evaluates the template label at every voxel centre of the grid. */
function labelVoxels(
  dims: number[],
  affine: Float64Array,
  subject: Subject,
): Uint8Array {
  const [nx, ny, nz] = dims;
  const labels = new Uint8Array(nx * ny * nz);
  const m = subject.worldToTemplate;
  const point = [0, 0, 0];
  let index = 0;
  for (let k = 0; k < nz; k++) {
    const z = affine[10] * k + affine[14];
    for (let j = 0; j < ny; j++) {
      const y = affine[5] * j + affine[13];
      for (let i = 0; i < nx; i++) {
        const x = affine[0] * i + affine[12];
        for (let row = 0; row < 3; row++) {
          point[row] = m[row * 4] * x + m[row * 4 + 1] * y +
            m[row * 4 + 2] * z + m[row * 4 + 3];
        }
        displace(point, subject);
        labels[index++] = templateLabel(point[0], point[1], point[2]);
      }
    }
  }
  return labels;
}

/** Adds the subject's smooth displacement to a template point, in place. */
function displace(point: number[], subject: Subject): void {
  const [x, y, z] = point;
  for (const mode of subject.modes) {
    const wave = mode.wave;
    const value = Math.sin(wave[0] * x + wave[1] * y + wave[2] * z + mode.phase);
    point[0] += mode.amplitude[0] * value;
    point[1] += mode.amplitude[1] * value;
    point[2] += mode.amplitude[2] * value;
  }
}

function ellipsoidRadius(
  x: number,
  y: number,
  z: number,
  radii: readonly number[],
  inset: number,
): number {
  const rx = x / (radii[0] - inset);
  const ry = y / (radii[1] - inset);
  const rz = z / (radii[2] - inset);
  return Math.sqrt(rx * rx + ry * ry + rz * rz);
}

/**
 * Returns the gyral folding pattern in [-1, 1]. It is a gyroid, sin x
 * cos y + sin y cos z + sin z cos x (range [-1.5, 1.5]), with a 24 mm
 * period. Its level sets are labyrinths of connected sheets, like gyri.
 */
function folding(x: number, y: number, z: number): number {
  const frequency = (2 * Math.PI) / 24;
  const u = frequency * x;
  const v = frequency * y + 0.7;
  const w = frequency * z + 1.3;
  const gyroid =
    Math.sin(u) * Math.cos(v) + Math.sin(v) * Math.cos(w) +
    Math.sin(w) * Math.cos(u);
  return gyroid / 1.5;
}

/** Returns the template's label at a point in template mm (RAS). */
function templateLabel(x: number, y: number, z: number): number {
  // Shells by insetting the head's semi-axes: 6 mm of scalp, 6 mm of
  // skull, then CSF down to the brain surface, which the folding moves.
  if (ellipsoidRadius(x, y, z, HEAD_MM, 0) > 1) return 0;
  if (ellipsoidRadius(x, y, z, HEAD_MM, 6) > 1) return LABEL.scalp;
  if (ellipsoidRadius(x, y, z, HEAD_MM, 12) > 1) return LABEL.skull;
  const fold = folding(x, y, z);
  const brain = ellipsoidRadius(x, y, z, HEAD_MM, 14 - fold);
  if (brain > 1) return LABEL.csf;

  for (const region of DEEP) {
    const dx = (x - region.centre[0]) / region.radii[0];
    const dy = (y - region.centre[1]) / region.radii[1];
    const dz = (z - region.centre[2]) / region.radii[2];
    if (dx * dx + dy * dy + dz * dz <= 1) return region.label;
  }
  // Interhemispheric fissure above the ventricles.
  if (Math.abs(x) < 1.5 && z > 24) return LABEL.csf;
  // Cortex: white matter reaches up into the gyri (fold near 1) and lies
  // deep under the sulci (fold near -1), so grey matter is 7 to 25 mm
  // deep. Sulci are CSF, lined by 3 mm of grey matter over the white.
  const whiteInset = 30 - 10 * fold;
  if (ellipsoidRadius(x, y, z, HEAD_MM, whiteInset) <= 1) return LABEL.wm;
  const nearWhite = ellipsoidRadius(x, y, z, HEAD_MM, whiteInset - 3) <= 1;
  return fold < -0.4 && !nearWhite ? LABEL.csf : LABEL.gm;
}

function renderImage(
  labels: Uint8Array,
  dims: number[],
  affine: Float64Array,
  subject: Subject,
  random: Random,
  options: PhantomOptions,
): Float32Array {
  const count = labels.length;
  const tissue = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const label = labels[i];
    tissue[i] = PHANTOM_LABELS[label].intensity * subject.contrast[label];
  }
  // Partial volume: a [1/4, 1/2, 1/4] blur along each axis.
  const image = blur(tissue, dims);
  if (options.bias ?? true) applyBias(image, dims, affine, subject.bias);
  if (options.noise ?? true) {
    const sigma = 0.03 * PHANTOM_LABELS[LABEL.wm].intensity;
    for (let i = 0; i < count; i++) {
      const real = image[i] + sigma * random.normal();
      const imaginary = sigma * random.normal();
      image[i] = Math.hypot(real, imaginary);
    }
  }
  return image;
}

function blur(image: Float32Array, dims: number[]): Float32Array {
  const strides = [1, dims[0], dims[0] * dims[1]];
  let current = image;
  for (let axis = 0; axis < 3; axis++) {
    const n = dims[axis];
    if (n < 3) continue;
    const stride = strides[axis];
    const next = new Float32Array(current.length);
    for (let index = 0; index < current.length; index++) {
      const position = Math.floor(index / stride) % n;
      const before = position > 0 ? current[index - stride] : current[index];
      const after = position < n - 1 ? current[index + stride] : current[index];
      next[index] = 0.25 * before + 0.5 * current[index] + 0.25 * after;
    }
    current = next;
  }
  return current;
}

/** Multiplies by exp of a quadratic in world mm scaled by 100 mm. */
function applyBias(
  image: Float32Array,
  dims: number[],
  affine: Float64Array,
  coefficients: number[],
): void {
  const [nx, ny, nz] = dims;
  const [c0, cx, cy, cz, cxx, cyy, czz, cxy] = coefficients;
  let index = 0;
  for (let k = 0; k < nz; k++) {
    const z = (affine[10] * k + affine[14]) / 100;
    for (let j = 0; j < ny; j++) {
      const y = (affine[5] * j + affine[13]) / 100;
      for (let i = 0; i < nx; i++) {
        const x = (affine[0] * i + affine[12]) / 100;
        const exponent =
          c0 + cx * x + cy * y + cz * z + cxx * x * x + cyy * y * y +
          czz * z * z + cxy * x * y;
        image[index++] *= Math.exp(exponent);
      }
    }
  }
}

/** Maps labels above `structures` to their parents, as float32 ids. */
function mergeLabels(labels: Uint8Array, structures: number): Float32Array {
  const target = PHANTOM_LABELS.map((_, label) => {
    let id = label;
    while (id > structures) id = PHANTOM_LABELS[id].parent;
    return id;
  });
  const out = new Float32Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = target[labels[i]];
  return out;
}
