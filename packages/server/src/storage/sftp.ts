export { SftpNode, type SftpNodeOptions } from './sftp/node.ts';
