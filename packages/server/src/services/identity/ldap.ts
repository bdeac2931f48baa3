import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import {
  Client,
  EqualityFilter,
  InappropriateAuthError,
  InvalidCredentialsError,
  NoSuchObjectError,
  ResultCodeError,
  SizeLimitExceededError,
  UnwillingToPerformError,
} from 'ldapts';
import type { LdapConfig } from '../../config.ts';
import { isUniqueViolation } from '../../db/knex.ts';
import { HttpError } from '../../errors.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { UserRow } from '../../repositories/users.ts';
import { newId } from '../ids.ts';
import { syncGroups } from './groups.ts';

/** What the directory says about a user whose password it accepted. */
export interface DirectoryEntry {
  dn: string;
  /** entryUUID (stable across renames and moves), or the DN when the server has none. */
  subject: string;
  /** The `cn` of each group the user is in; null when group mapping is off. */
  groups: string[] | null;
}

/**
 * Stands in for the password hash of an account whose password lives in the directory: not an
 * argon2 hash, so no password ever verifies against it locally.
 */
export const DIRECTORY_PASSWORD = '!directory';

/** A directory that does not answer within this long counts as down (a sign-in waits on it). */
const TIMEOUT_MS = 5000;

/** RFC 4515 escaping of a value put into a filter: `*`, `(`, `)`, `\` and NUL lose their meaning. */
function escapeValue(value: string): string {
  return new EqualityFilter().escape(value);
}

/** The bind or search was refused for this user (wrong password, locked or disabled entry). */
function refused(error: unknown): boolean {
  return (
    error instanceof InvalidCredentialsError ||
    error instanceof InappropriateAuthError ||
    error instanceof UnwillingToPerformError
  );
}

function firstValue(value: unknown): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined || first === null) return undefined;
  return Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}

const unavailable = (detail: string) =>
  new HttpError('directory_unavailable', 'the sign-in directory (LDAP) is not answering; try again later', {
    detail,
  });

/**
 * The LDAP directory users sign in with: the service account finds the user's entry with the
 * configured filter (the typed name escaped, never pasted in), then a bind as that entry with
 * the given password checks it. The password is never compared by dfs.
 */
export class LdapDirectory {
  readonly issuer: string;
  private readonly host: string;

  constructor(private readonly config: LdapConfig) {
    // The same entry under another server or base is a different identity.
    this.issuer = `${config.url}/${config.searchBase}`;
    this.host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
  }

  /**
   * A new object each time (ldapts keeps the socket in it). The certificate is checked against
   * the URL's host, StartTLS included, which would otherwise check it against "localhost".
   */
  private tlsOptions(): ConnectionOptions {
    return {
      host: this.host,
      ...(isIP(this.host) ? {} : { servername: this.host }),
      ...(this.config.tlsCa ? { ca: this.config.tlsCa } : {}),
    };
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      url: this.config.url,
      timeout: TIMEOUT_MS,
      connectTimeout: TIMEOUT_MS,
      // ldapts opens TLS at once whenever it is given TLS options, ldap:// or not: StartTLS's
      // go to startTLS alone.
      ...(this.config.url.startsWith('ldaps:') ? { tlsOptions: this.tlsOptions() } : {}),
    });
    if (this.config.startTls) await client.startTLS(this.tlsOptions());
    return client;
  }

  /**
   * The user's entry when `password` is theirs; null when there is no such entry, the filter
   * leaves it out, more than one entry matches, or the bind is refused. A directory that cannot
   * be reached (or refuses the service account) is `directory_unavailable`, never a wrong password.
   */
  async authenticate(username: string, password: string): Promise<DirectoryEntry | null> {
    // An empty password makes a simple bind "unauthenticated", which servers accept for any DN.
    if (password === '') return null;
    const clients: Client[] = [];
    try {
      const service = await this.connect();
      clients.push(service);
      if (this.config.bindDn && this.config.bindPassword)
        await this.serviceBind(service, this.config.bindDn, this.config.bindPassword);
      const entry = await this.findUser(service, username);
      if (!entry) return null;

      // A connection of its own: the service connection keeps its rights for the group search.
      const asUser = await this.connect();
      clients.push(asUser);
      try {
        await asUser.bind(entry.dn, password);
      } catch (error) {
        if (refused(error)) return null;
        throw error;
      }
      return { ...entry, groups: await this.groupsOf(service, entry.dn, username) };
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw unavailable(error instanceof Error ? error.message : String(error));
    } finally {
      await Promise.allSettled(clients.map((client) => client.unbind()));
    }
  }

  private async serviceBind(client: Client, dn: string, password: string): Promise<void> {
    try {
      await client.bind(dn, password);
    } catch (error) {
      // A configuration fault, not the user's: they must not be told their password is wrong.
      if (error instanceof ResultCodeError)
        throw unavailable(`the service account's bind failed: ${error.message}`);
      throw error;
    }
  }

  private async findUser(client: Client, username: string): Promise<Omit<DirectoryEntry, 'groups'> | null> {
    const filter = this.config.searchFilter.replaceAll('{username}', escapeValue(username));
    try {
      const { searchEntries } = await client.search(this.config.searchBase, {
        scope: 'sub',
        filter,
        attributes: ['entryUUID'],
        // Two are enough to know the name is ambiguous, which signs nobody in.
        sizeLimit: 2,
      });
      if (searchEntries.length !== 1) return null;
      const [entry] = searchEntries;
      if (!entry) return null;
      return { dn: entry.dn, subject: firstValue(entry.entryUUID) ?? entry.dn };
    } catch (error) {
      if (error instanceof SizeLimitExceededError) return null;
      if (error instanceof NoSuchObjectError)
        throw unavailable(`the search base does not exist: ${error.message}`);
      throw error;
    }
  }

  private async groupsOf(client: Client, dn: string, username: string): Promise<string[] | null> {
    if (!this.config.groupBase) return null;
    const filter = this.config.groupFilter
      .replaceAll('{dn}', escapeValue(dn))
      .replaceAll('{username}', escapeValue(username));
    const { searchEntries } = await client.search(this.config.groupBase, {
      scope: 'sub',
      filter,
      attributes: ['cn'],
    });
    return searchEntries.map((entry) => firstValue(entry.cn)).filter((cn): cn is string => Boolean(cn));
  }
}

/**
 * Directory sign-in on the dfs side: the account linked to the entry (created at its first
 * sign-in, whatever DFS_SIGNUP says: the directory decides who may sign in), and its groups made
 * those of the directory.
 */
export class LdapSignin {
  constructor(
    private readonly repos: Repositories,
    readonly directory: LdapDirectory,
    private readonly now: () => number,
  ) {}

  /** Whether this account's password is checked by the directory. */
  async isDirectoryAccount(userId: string): Promise<boolean> {
    return this.repos.identities.isLinked(userId, 'ldap');
  }

  /** Whether the directory takes `password` for the entry linked to this account. */
  async verify(user: UserRow, password: string): Promise<boolean> {
    const entry = await this.directory.authenticate(user.username, password);
    if (!entry) return false;
    const found = await this.repos.identities.findUser('ldap', this.directory.issuer, entry.subject);
    return found?.user.id === user.id;
  }

  /** The account when the directory accepts the password; null when it does not. */
  async signin(username: string, password: string): Promise<UserRow | null> {
    const entry = await this.directory.authenticate(username, password);
    if (!entry) return null;
    try {
      return await this.link(username, entry);
    } catch (error) {
      // Two first sign-ins of one person at once: the other created the account; use it.
      if (isUniqueViolation(error)) {
        const found = await this.repos.identities.findUser('ldap', this.directory.issuer, entry.subject);
        if (found) return found.user;
      }
      throw error;
    }
  }

  private async link(username: string, entry: DirectoryEntry): Promise<UserRow> {
    const now = this.now();
    const user = await this.repos.transaction(async (tx) => {
      const found = await tx.identities.findUser('ldap', this.directory.issuer, entry.subject);
      let user: UserRow;
      if (found) {
        user = found.user;
        await tx.identities.touch(found.identity.id, now);
      } else {
        if (await tx.users.findByUsername(username)) {
          // Another directory entry was linked to this name (the entry was deleted and made
          // again): taking the account over on a name alone would hand one person's files to another.
          throw new HttpError(
            'username_taken',
            `the account "${username}" belongs to another directory entry; an administrator must resolve it`,
          );
        }
        user = {
          id: newId(),
          username,
          password_hash: DIRECTORY_PASSWORD,
          // As for any account: the server's first one administers it.
          is_admin: !(await tx.users.any()),
          created_at: now,
        };
        await tx.users.insert(user);
        await tx.identities.insert({
          id: newId(),
          user_id: user.id,
          provider: 'ldap',
          issuer: this.directory.issuer,
          subject: entry.subject,
          created_at: now,
          last_used_at: now,
        });
      }
      return user;
    });
    if (entry.groups) await syncGroups(this.repos, 'ldap', user.id, entry.groups, now);
    return user;
  }
}
