import { LocalNode } from './local.ts';
import type { NodeSpec } from './node-spec.ts';
import { S3Node } from './s3/node.ts';
import { SftpNode, type SftpNodeOptions } from './sftp.ts';
import type { StorageNode } from './types.ts';

/** The driver for a parsed node URL (see node-spec.ts). */
export function createNode(
  spec: NodeSpec,
  options: Pick<SftpNodeOptions, 'timeouts' | 'concurrency'> = {},
): StorageNode {
  if (spec.kind === 'local') return new LocalNode(spec.root);
  if (spec.kind === 's3') return new S3Node(spec);
  return new SftpNode({ ...spec, ...options });
}
