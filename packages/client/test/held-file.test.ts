import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createNodeFileFromBytes, heldFilesWork, nodeFileFromBytes } from '../src/node/held-file.ts';
import { appendFile, heldBytes } from '../src/upload/held-bytes.ts';

const bytesOf = async (blob: Blob) => new Uint8Array(await blob.arrayBuffer());

describe('nodeFileFromBytes', () => {
  const data = new Uint8Array(randomBytes(100_003));
  const file = nodeFileFromBytes(data, 'photo.jpg', 'image/jpeg');

  it('is a File of those bytes, read any way', async () => {
    expect(file).toBeInstanceOf(File);
    expect(file).toMatchObject({ name: 'photo.jpg', type: 'image/jpeg', size: data.length });
    expect(await bytesOf(file)).toEqual(data);
    expect(new Uint8Array(await new Response(file.stream()).arrayBuffer())).toEqual(data);
    expect(await bytesOf(file.slice(10, 20))).toEqual(data.subarray(10, 20));
    expect(await bytesOf(file.slice(-3))).toEqual(data.subarray(-3));
    const text = nodeFileFromBytes(new TextEncoder().encode('héllo'), 'a.txt');
    expect(await text.text()).toBe('héllo');
  });

  it('holds the bytes themselves, and hands out copies', async () => {
    expect(heldBytes(file)).toBe(data);
    const copy = await bytesOf(file);
    copy[0] = copy[0]! ^ 0xff;
    expect(await bytesOf(file)).toEqual(data);
  });

  it("goes through Node's FormData and multipart encoding whole, under its own name", async () => {
    const form = new FormData();
    form.append('file', file);
    const encoded = new Response(form);
    const parsed = (await encoded.formData()).get('file') as File;
    expect(parsed.name).toBe('photo.jpg');
    expect(await bytesOf(parsed)).toEqual(data);
  });

  it('goes into a form under another name as a File of the same bytes', async () => {
    const form = new FormData();
    appendFile(form, 'file', file, 'renamed.jpg');
    const sent = form.get('file') as File;
    expect(sent.name).toBe('renamed.jpg');
    expect(heldBytes(sent)).toBe(data);
    const parsed = (await new Response(form).formData()).get('file') as File;
    expect(parsed.name).toBe('renamed.jpg');
    expect(await bytesOf(parsed)).toEqual(data);
  });

  it('an empty file is empty', async () => {
    const empty = nodeFileFromBytes(new Uint8Array(0), 'empty');
    expect(empty.size).toBe(0);
    expect((await bytesOf(empty)).length).toBe(0);
  });

  // A HeldFile gives itself a size over Blob's and relies on FormData keeping it as it is. If a
  // Node update changes either, this fails here, and uploads fall back to copies (below).
  it('passes as it is on this Node: its size is read, and FormData keeps it', () => {
    expect(heldFilesWork()).toBe(true);
    expect(Object.getOwnPropertyDescriptor(file, 'size')?.value).toBe(data.length);
    const form = new FormData();
    form.append('file', file);
    expect(form.get('file')).toBe(file);
  });

  it('on a Node where it would not pass, is a standard File of the bytes (a copy)', async () => {
    const copied = createNodeFileFromBytes(() => false)(data, 'photo.jpg', 'image/jpeg');
    expect(Object.getOwnPropertyDescriptor(copied, 'size')).toBeUndefined();
    expect(copied).toMatchObject({ name: 'photo.jpg', type: 'image/jpeg', size: data.length });
    expect(await bytesOf(copied)).toEqual(data);
    const form = new FormData();
    form.append('file', copied, 'renamed.jpg');
    expect(await bytesOf(form.get('file') as File)).toEqual(data);
  });
});
