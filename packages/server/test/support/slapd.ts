import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'ldapts';

const run = promisify(execFile);

export const SUFFIX = 'dc=dfs,dc=test';
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const ROOT_PASSWORD = 'root secret of the test directory';
export const SERVICE_DN = `cn=dfs,ou=services,${SUFFIX}`;
export const SERVICE_PASSWORD = 'service account password';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;
const POLICY = `cn=default,ou=policies,${SUFFIX}`;

export interface DirectoryUser {
  uid: string;
  password: string;
  /** `disabled`: what a filter such as `(!(employeeType=disabled))` keeps out. */
  employeeType?: string;
}

export interface Slapd {
  /** ldap:// (StartTLS offered). */
  url: string;
  /** ldaps://, with a certificate for 127.0.0.1 from a CA made for this server alone. */
  ldapsUrl: string;
  /** That CA, PEM: what DFS_LDAP_TLS_CA names. */
  caFile: string;
  /** A client bound as the directory's root, to change entries during a test. */
  admin(): Promise<Client>;
  stop(): Promise<void>;
}

/** Debian's slapd lives in sbin and loads its backends as modules from here. */
const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
const MODULES = '/usr/lib/ldap';
const SCHEMA = '/etc/ldap/schema';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A throwaway CA and a server certificate for 127.0.0.1 signed by it (a day, EC P-256: quick). */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const file = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=dfs test directory CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  ]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.pem'),
    '-days',
    '1',
    '-extfile',
    file('server.ext'),
  ]);
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}

function ldif(users: DirectoryUser[], groups: Record<string, string[]>): string {
  const entries = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: dfs\no: dfs tests`,
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services`,
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ${GROUPS}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ou=policies,${SUFFIX}\nobjectClass: organizationalUnit\nou: policies`,
    `dn: ${POLICY}\nobjectClass: organizationalRole\nobjectClass: pwdPolicy\ncn: default\npwdAttribute: userPassword\npwdLockout: TRUE`,
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: dfs\nuserPassword: ${SERVICE_PASSWORD}`,
    ...users.map(
      (u) =>
        `dn: uid=${u.uid},${PEOPLE}\nobjectClass: inetOrgPerson\nuid: ${u.uid}\ncn: ${u.uid}\nsn: ${u.uid}\nuserPassword: ${u.password}${
          u.employeeType ? `\nemployeeType: ${u.employeeType}` : ''
        }`,
    ),
    ...Object.entries(groups).map(
      ([cn, members]) =>
        // groupOfNames needs at least one member: the service account stands in for an empty group.
        `dn: cn=${cn},${GROUPS}\nobjectClass: groupOfNames\ncn: ${cn}\n${(members.length > 0
          ? members.map((uid) => `uid=${uid},${PEOPLE}`)
          : [SERVICE_DN]
        )
          .map((dn) => `member: ${dn}`)
          .join('\n')}`,
    ),
  ];
  return `${entries.join('\n\n')}\n`;
}

const running = new Set<ChildProcess>();
// A test file that fails or is interrupted must not leave a directory server behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * A throwaway OpenLDAP server on 127.0.0.1 and a free port: a slapd.conf of its own (mdb backend,
 * the standard schemas), the entries loaded offline with slapadd (which gives each its
 * entryUUID), started in the foreground as a child of the test process; no systemd, no
 * system-wide configuration.
 */
export async function startSlapd(
  users: DirectoryUser[],
  groups: Record<string, string[]> = {},
): Promise<Slapd> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-slapd-'));
  await mkdir(path.join(dir, 'db'));
  const conf = path.join(dir, 'slapd.conf');
  const tls = await makeCertificates(dir);
  await writeFile(
    conf,
    [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include ${SCHEMA}/${s}.schema`),
      `modulepath ${MODULES}`,
      'moduleload back_mdb',
      'moduleload ppolicy',
      `TLSCACertificateFile ${tls.ca}`,
      `TLSCertificateFile ${tls.cert}`,
      `TLSCertificateKeyFile ${tls.key}`,
      `pidfile ${path.join(dir, 'slapd.pid')}`,
      `argsfile ${path.join(dir, 'slapd.args')}`,
      // Like Active Directory, accept a DN with an empty password as an anonymous bind: a client
      // that passes an empty password through would sign anyone in.
      'allow bind_anon_dn',
      // Passwords are compared only through binds; everything else is readable by bound users.
      'access to attrs=userPassword by anonymous auth by * none',
      'access to * by users read by * none',
      'database mdb',
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw "${ROOT_PASSWORD}"`,
      `directory ${path.join(dir, 'db')}`,
      'maxsize 16777216',
      // Password policy: an entry whose pwdAccountLockedTime is set cannot bind (a locked account).
      'overlay ppolicy',
      `ppolicy_default "${POLICY}"`,
      '',
    ].join('\n'),
  );
  await writeFile(path.join(dir, 'data.ldif'), ldif(users, groups));
  await run(SLAPADD, ['-q', '-f', conf, '-l', path.join(dir, 'data.ldif')]);
  const url = `ldap://127.0.0.1:${await freePort()}`;
  const ldapsUrl = `ldaps://127.0.0.1:${await freePort()}`;
  // -d keeps slapd in the foreground, so it dies with its parent's kill and not before.
  const child = spawn(SLAPD, ['-d', '0', '-f', conf, '-h', `${url}/ ${ldapsUrl}/`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (running.delete(child)) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };

  const admin = async () => {
    const client = new Client({ url, timeout: 5000, connectTimeout: 2000 });
    await client.bind(ROOT_DN, ROOT_PASSWORD);
    return client;
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`slapd exited with ${child.exitCode}: ${stderr}`);
    }
    try {
      await (await admin()).unbind();
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`slapd did not answer on ${url}: ${String(error)} ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { url, ldapsUrl, caFile: tls.ca, admin, stop };
}
