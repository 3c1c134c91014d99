import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = resolve(import.meta.dirname, '../src');

function walk(d: string): string[] {
  return readdirSync(d).flatMap((f) => {
    const p = join(d, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layering (DESIGN.md §3)', () => {
  it('the core under src/ imports nothing from Node or the DOM except src/cli/', () => {
    const bad: string[] = [];
    for (const f of walk(src)) {
      if (f.includes(`${join('src', 'cli')}`)) continue;
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/g)) {
        const spec = m[1];
        if (spec.startsWith('node:') || /^(fs|path|os|child_process|worker_threads|readline|stream|zlib|url|process)$/.test(spec)) bad.push(`${f}: ${spec}`);
      }
      if (/\bprocess\.(env|argv|stdout|stderr|exit)/.test(text)) bad.push(`${f}: uses process`);
      if (/\b(document|window)\./.test(text)) bad.push(`${f}: uses the DOM`);
    }
    expect(bad).toEqual([]);
  });
});
