import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_TYPES, generateApiArtifacts, OPENAPI_JSON } from '../../scripts/openapi.ts';

describe('the checked-in HTTP contract', () => {
  it('is what the schemas produce now (run `pnpm api:generate` after changing a route or schema)', async () => {
    const { json, types } = await generateApiArtifacts();
    expect(readFileSync(OPENAPI_JSON, 'utf8'), 'docs/openapi.json').toBe(json);
    expect(readFileSync(API_TYPES, 'utf8'), 'packages/client/src/generated/api-types.ts').toBe(types);
    // The document is the real one: every route family is in it.
    const doc = JSON.parse(json) as { paths: Record<string, unknown> };
    for (const path of [
      '/api/uploads',
      '/api/files/{id}/content',
      '/api/public/shares/{token}',
      '/api/nodes',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });
});
