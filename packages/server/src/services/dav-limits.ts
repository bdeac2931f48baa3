const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Every bound WebDAV puts on what one user can make the server parse, keep or answer, in one
 * place (docs/API.md, WebDAV, lists them with their status codes). Real clients stay far below
 * each: Windows, macOS, davfs2 and rclone ask for about ten properties, store a few short dead
 * properties and hold a lock per open document.
 */
export interface DavLimits {
  /** An XML request body (PROPFIND, PROPPATCH, LOCK): `413` past it. */
  xmlBodyBytes: number;
  /** Elements in an XML request body (each costs the parser time and memory): `413` past it. */
  xmlElements: number;
  /** Distinct properties one PROPFIND may name: `413` past it. */
  propfindProps: number;
  /** One multistatus answer (a PROPFIND of a folder with its members): `507` past it. */
  answerBytes: number;
  /** A dead property's value as stored (its XML): `507` in PROPPATCH's answer past it. */
  propertyValueBytes: number;
  /** A dead property's namespace and its name, each (the columns that hold them). */
  propertyNameChars: number;
  /** Dead properties on one file or folder. */
  propertiesPerEntry: number;
  /** Bytes of dead properties (namespaces, names and values) on one file or folder. */
  propertyBytesPerEntry: number;
  /** Bytes of dead properties over all of a user's entries, the trash included (copies count). */
  propertyBytesPerUser: number;
  /** Live locks one user may hold: `507` for one more. */
  locksPerUser: number;
  /** A lock's `DAV:owner` as stored (its XML): `413` past it. */
  lockOwnerBytes: number;
}

export const DAV_LIMITS: Readonly<DavLimits> = Object.freeze({
  xmlBodyBytes: 1 * MiB,
  xmlElements: 10_000,
  propfindProps: 256,
  answerBytes: 64 * MiB,
  propertyValueBytes: 64 * KiB,
  propertyNameChars: 255,
  propertiesPerEntry: 128,
  propertyBytesPerEntry: 256 * KiB,
  propertyBytesPerUser: 16 * MiB,
  locksPerUser: 256,
  lockOwnerBytes: 4 * KiB,
});

/** Bytes a dead property counts for: what its row holds, as UTF-8. */
export function propertyBytes(p: { ns: string; name: string; value: string }): number {
  return Buffer.byteLength(p.ns) + Buffer.byteLength(p.name) + Buffer.byteLength(p.value);
}
