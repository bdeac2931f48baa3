import { LocalNode } from './local.ts';
import type { NodeSpec } from './node-spec.ts';
import type { SftpNodeOptions } from './sftp.ts';
import type { StorageNode } from './types.ts';

/**
 * The driver for a parsed node URL (see node-spec.ts).
 *
 * The SFTP and S3 drivers are loaded only when a node of their kind is configured: their clients
 * (ssh2, the AWS SDK) are about a fifth of the app's heap when both are loaded, and every full garbage
 * collection marks the whole heap again — under upload load, several times a second.
 */
export async function createNode(
  spec: NodeSpec,
  options: Pick<SftpNodeOptions, 'timeouts' | 'concurrency'> = {},
): Promise<StorageNode> {
  if (spec.kind === 'local') return new LocalNode(spec.root);
  if (spec.kind === 's3') {
    const { S3Node } = await import('./s3/node.ts');
    return new S3Node(spec);
  }
  const { SftpNode } = await import('./sftp.ts');
  return new SftpNode({ ...spec, ...options });
}
