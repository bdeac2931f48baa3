import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isoBase64URL, isoCBOR } from '@simplewebauthn/server/helpers';

/**
 * A software WebAuthn authenticator (a platform one with a discoverable ES256 credential, "none"
 * attestation), producing the bytes a browser hands over: enough for API tests to register and
 * sign with real signatures that the server verifies exactly as it does a browser's. The
 * encoding is the library's own CBOR; only the framing of authenticator data is written here.
 */
export class SoftAuthenticator {
  readonly credentialId = randomBytes(32);
  readonly privateKey: KeyObject;
  private readonly publicJwk: { x: string; y: string };
  /** The signature counter; `null` for an authenticator that keeps none (always 0). */
  counter: number | null = 0;
  userHandle: string | undefined;

  constructor(
    readonly origin: string,
    readonly rpId: string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.publicJwk = { x: String(jwk.x), y: String(jwk.y) };
  }

  get id(): string {
    return isoBase64URL.fromBuffer(this.credentialId);
  }

  /** `navigator.credentials.create()` for `options` (PublicKeyCredentialCreationOptionsJSON). */
  register(options: { challenge: string; user?: { id: string } }): Record<string, unknown> {
    this.userHandle = options.user?.id;
    const cose = new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, isoBase64URL.toBuffer(this.publicJwk.x)],
      [-3, isoBase64URL.toBuffer(this.publicJwk.y)],
    ]);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([
      this.authDataHead(0x01 | 0x04 | 0x40),
      Buffer.alloc(16), // AAGUID: none
      idLength,
      this.credentialId,
      Buffer.from(isoCBOR.encode(cose)),
    ]);
    const attestation: [string, string | Map<string, never> | Uint8Array][] = [
      ['fmt', 'none'],
      ['attStmt', new Map<string, never>()],
      ['authData', new Uint8Array(authData)],
    ];
    const attestationObject = isoCBOR.encode(new Map(attestation));
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: this.clientData('webauthn.create', options.challenge),
        attestationObject: isoBase64URL.fromBuffer(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** `navigator.credentials.get()` for `options`; `userVerified: false` is a key used without its PIN. */
  assert(
    options: { challenge: string },
    { userVerified = true, origin = this.origin }: { userVerified?: boolean; origin?: string } = {},
  ): Record<string, unknown> {
    if (this.counter !== null) this.counter += 1;
    const authData = this.authDataHead(0x01 | (userVerified ? 0x04 : 0));
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, origin);
    const signed = Buffer.concat([
      authData,
      createHash('sha256').update(isoBase64URL.toBuffer(clientDataJSON)).digest(),
    ]);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON,
        authenticatorData: isoBase64URL.fromBuffer(new Uint8Array(authData)),
        signature: isoBase64URL.fromBuffer(new Uint8Array(sign('sha256', signed, this.privateKey))),
        ...(this.userHandle ? { userHandle: this.userHandle } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  private authDataHead(flags: number): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(this.counter ?? 0);
    return Buffer.concat([createHash('sha256').update(this.rpId).digest(), Buffer.from([flags]), count]);
  }

  private clientData(type: string, challenge: string, origin = this.origin): string {
    return isoBase64URL.fromUTF8String(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }
}
