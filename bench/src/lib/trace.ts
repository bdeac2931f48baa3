/**
 * A transport that times every call the client core makes, whatever its methods are: a Proxy over
 * a `DfsApi` that forwards each method (bound to the real client, whose private fields need it)
 * and records when it was called and when it settled. The core's upload paths differ (hash first,
 * speculative chunks while hashing, one multipart POST for small files); the bench reads which
 * calls a file made instead of assuming one path.
 */
import type { DfsApi } from '@dfs/client';

export interface TracedCall {
  method: string;
  start: number;
  end: number | null;
  ok: boolean | null;
}

export interface CallHooks {
  /** Runs synchronously when `method` is called (before the request goes out). */
  onStart?(method: string, call: TracedCall): void;
  /** Runs synchronously when the call settles. */
  onEnd?(method: string, call: TracedCall): void;
}

export interface Tracer {
  /** Pass this as the Upload's / UploadQueue's `transport`. */
  transport: DfsApi;
  calls: TracedCall[];
  /** Calls of one method, in call order. */
  of(method: string): TracedCall[];
  /** "createUpload 1, putChunk 128, completeUpload 1" */
  summary(): string;
}

export function traceTransport(api: DfsApi, hooks: CallHooks = {}): Tracer {
  const calls: TracedCall[] = [];
  const transport = new Proxy(api, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (...args: unknown[]) => {
        const call: TracedCall = { method: prop, start: performance.now(), end: null, ok: null };
        calls.push(call);
        hooks.onStart?.(prop, call);
        const settle = (ok: boolean) => {
          call.end = performance.now();
          call.ok = ok;
          hooks.onEnd?.(prop, call);
        };
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (error) {
          settle(false);
          throw error;
        }
        if (result instanceof Promise) {
          return result.then(
            (v) => {
              settle(true);
              return v;
            },
            (error: unknown) => {
              settle(false);
              throw error;
            },
          );
        }
        settle(true);
        return result;
      };
    },
  });
  return {
    transport,
    calls,
    of: (method) => calls.filter((c) => c.method === method),
    summary() {
      const counts = new Map<string, number>();
      for (const c of calls) counts.set(c.method, (counts.get(c.method) ?? 0) + 1);
      return [...counts].map(([m, n]) => `${m} ${n}`).join(', ');
    },
  };
}
