import { parseNodeUrl } from '../../../storage/node-spec.ts';
import { createNode } from '../../../storage/node-url.ts';
import type { StorageNode } from '../../../storage/types.ts';

/**
 * The configured nodes (DFS_NODES) by name, the name a manifest records its replicas under. A
 * node that does not connect is left out (its replicas read as unreachable) rather than failing
 * the whole run.
 */
export async function openNodes(
  nodeUrls: string[],
  progress: (line: string) => void,
): Promise<{ byName: Map<string, StorageNode>; close(): Promise<void> }> {
  const byName = new Map<string, StorageNode>();
  for (const url of nodeUrls) {
    const node = await createNode(parseNodeUrl(url));
    try {
      await node.connect();
      byName.set(node.name, node);
    } catch (error) {
      progress(`node ${node.name} does not answer: ${(error as Error).message}`);
      await node.close().catch(() => undefined);
    }
  }
  return {
    byName,
    close: async () => {
      await Promise.allSettled([...byName.values()].map((node) => node.close()));
    },
  };
}
