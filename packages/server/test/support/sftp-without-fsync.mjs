#!/usr/bin/env node
// OpenSSH's sftp-server with `fsync@openssh.com` left out of the extensions it announces (its
// `-P` option refuses the request but still announces it). Everything else passes through.
import { spawn } from 'node:child_process';

const server = spawn(process.argv[2] ?? '/usr/lib/openssh/sftp-server', [], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
process.stdin.pipe(server.stdin);
server.on('exit', (code) => process.exit(code ?? 0));

let pending = Buffer.alloc(0);
let rewritten = false;
server.stdout.on('data', (data) => {
  if (rewritten) {
    process.stdout.write(data);
    return;
  }
  pending = Buffer.concat([pending, data]);
  if (pending.length < 4 || pending.length < 4 + pending.readUInt32BE(0)) return;
  const length = pending.readUInt32BE(0);
  // SSH_FXP_VERSION: type, version, then (name, data) string pairs.
  const packet = pending.subarray(4, 4 + length);
  const kept = [packet.subarray(0, 5)];
  for (let at = 5; at < packet.length; ) {
    const nameLength = packet.readUInt32BE(at);
    const name = packet.subarray(at + 4, at + 4 + nameLength).toString();
    const dataLength = packet.readUInt32BE(at + 4 + nameLength);
    const end = at + 8 + nameLength + dataLength;
    if (name !== 'fsync@openssh.com') kept.push(packet.subarray(at, end));
    at = end;
  }
  const body = Buffer.concat(kept);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  process.stdout.write(Buffer.concat([head, body, pending.subarray(4 + length)]));
  rewritten = true;
});
