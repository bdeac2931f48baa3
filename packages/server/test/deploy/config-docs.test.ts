import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { END, README, renderConfigTable, START, withTable } from '../../scripts/config-table.ts';
import { CONFIG_VARIABLES, configReference } from '../../src/config.ts';

describe("the README's configuration table", () => {
  it('is the one the config schema renders (run `pnpm docs:config` after changing a setting)', () => {
    const readme = readFileSync(README, 'utf8');
    const section = readme.slice(readme.indexOf(START) + START.length, readme.indexOf(END)).trim();
    expect(section).toBe(renderConfigTable());
  });

  it('describes every variable the app reads', () => {
    const docs = configReference();
    expect(docs.map((d) => d.name)).toEqual(CONFIG_VARIABLES);
    for (const doc of docs) expect(doc.description, doc.name).not.toBe('');
    for (const name of CONFIG_VARIABLES) expect(renderConfigTable()).toContain(`| \`${name}\``);
  });

  it('refuses a README without the markers instead of appending a table somewhere', () => {
    expect(() => withTable('# no table here\n', 'x')).toThrow(/config-table/);
  });
});
