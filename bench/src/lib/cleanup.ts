/**
 * Everything the bench starts registers how to undo it here; `runAll` undoes it in reverse order
 * (also on SIGINT/SIGTERM), so a failed measurement never leaves a server, an sshd or a tmp dir.
 */
type Undo = { label: string; fn: () => Promise<void> | void };

const stack: Undo[] = [];

export function onCleanup(label: string, fn: () => Promise<void> | void): () => Promise<void> {
  const entry = { label, fn };
  stack.push(entry);
  // Running it early (a section done with its server) takes it off the stack.
  return async () => {
    const i = stack.indexOf(entry);
    if (i < 0) return;
    stack.splice(i, 1);
    await entry.fn();
  };
}

export async function runAll(): Promise<void> {
  while (stack.length > 0) {
    const entry = stack.pop()!;
    try {
      await entry.fn();
    } catch (error) {
      console.error(`bench: cleanup of ${entry.label} failed:`, error);
    }
  }
}
