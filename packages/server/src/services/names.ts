import { nameProblem } from '@dfs/shared';
import { HttpError } from '../errors.ts';

export function assertValidName(name: string): void {
  const problem = nameProblem(name);
  if (problem) throw new HttpError('invalid_name', problem);
}

/** `report.pdf` → `report (1).pdf`; dotfiles and names without an extension keep it simple. */
export function suffixedName(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  const base = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot) : '';
  const suffix = ` (${n})`;
  // Stay within 255 bytes by trimming the base, never the suffix or the extension.
  let trimmed = base;
  while (Buffer.byteLength(trimmed + suffix + ext) > 255 && trimmed.length > 0) {
    trimmed = Array.from(trimmed).slice(0, -1).join('');
  }
  return trimmed + suffix + ext;
}
