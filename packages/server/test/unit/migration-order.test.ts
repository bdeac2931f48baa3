import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Migration } from '../../src/db/migration-kit.ts';
import { migrationSource } from '../../src/db/migrations.ts';

/**
 * Migrations are forward-only, numbered, and run in the order of their numbers: a database that
 * ran them in another order, or a number that two branches both took, would upgrade differently
 * from one installation to the next.
 */
const DIR = new URL('../../src/db/migrations/', import.meta.url);
const NAME = /^(\d{3})_[a-z0-9]+(?:_[a-z0-9]+)*$/;

describe('the migration list', () => {
  it('is in strictly increasing order of unique numbers, each name NNN_snake_case', async () => {
    const names = (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));
    for (const name of names) expect(name).toMatch(NAME);
    const numbers = names.map((name) => Number(name.slice(0, 3)));
    for (let i = 1; i < numbers.length; i++) {
      expect(numbers[i], `${names[i - 1]} then ${names[i]}`).toBeGreaterThan(numbers[i - 1]!);
    }
    expect(new Set(numbers).size).toBe(numbers.length);
  });

  it('lists every file of db/migrations/, each under the number its file name has', async () => {
    const listed = new Set(await migrationSource.getMigrations([]));
    const files = readdirSync(DIR).filter((file) => file.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    const numbers = new Set<string>();
    for (const file of files) {
      const number = /^(\d{3})-[a-z0-9-]+\.ts$/.exec(file)?.[1];
      expect(number, `${file} is named NNN-name.ts`).toBeDefined();
      expect(numbers.has(number!), `two files are numbered ${number}`).toBe(false);
      numbers.add(number!);
      const exported = Object.values(await import(fileURLToPath(new URL(file, DIR)))).filter(
        (value): value is Migration =>
          typeof value === 'object' && value !== null && 'name' in value && 'up' in value,
      );
      expect(exported, `${file} exports one migration`).toHaveLength(1);
      const migration = exported[0]!;
      expect(migration.name.slice(0, 4), file).toBe(`${number}_`);
      expect(listed.has(migration), `${file} is in db/migrations.ts's list`).toBe(true);
    }
  });
});
