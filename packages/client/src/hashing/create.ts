import { createJsHasher } from './js.ts';
import type { Hasher } from './types.ts';
import { createWasmHasher } from './wasm.ts';

export interface CreateHasherOptions {
  /** `'wasm'` (default): hash-wasm when WebAssembly works, else the JS fallback. `'js'`: always JS. */
  prefer?: 'wasm' | 'js';
}

export function webAssemblyAvailable(): boolean {
  return typeof WebAssembly === 'object' && typeof WebAssembly.instantiate === 'function';
}

let wasmHasher: Promise<Hasher | null> | undefined;
let jsHasher: Hasher | undefined;

/**
 * The best available hasher. WebAssembly is probed by actually instantiating hash-wasm (a CSP
 * may forbid it even where the global exists); on failure the pure-JS backend is returned.
 */
export async function createHasher(options: CreateHasherOptions = {}): Promise<Hasher> {
  if (options.prefer !== 'js' && webAssemblyAvailable()) {
    wasmHasher ??= createWasmHasher().catch(() => null);
    const h = await wasmHasher;
    if (h) return h;
  }
  jsHasher ??= createJsHasher();
  return jsHasher;
}
