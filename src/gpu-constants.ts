// WebGPU flag values fixed by the specification. Node only defines the
// GPUBufferUsage and GPUMapMode globals once Dawn is loaded, so modules that
// run at import time use these instead.

export const BUFFER_USAGE = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

export const MAP_MODE_READ = 0x0001;
