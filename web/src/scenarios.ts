/** The shipped scenarios (scenarios/*.yaml), bundled as text. */
import { parseDocument } from 'yaml';

const files = import.meta.glob('../../scenarios/*.yaml', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

export interface Shipped {
  id: string;
  file: string;
  text: string;
  description: string;
  /** The comment block at the top of the file, without the `#`s and the $schema line. */
  about: string;
}

export const DEFAULT_SCENARIO = 'thread-2020';

function about(text: string): string {
  const lines: string[] = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('#')) break;
    if (l.includes('yaml-language-server')) continue;
    lines.push(l.replace(/^#\s?/, ''));
  }
  return lines.join(' ').replace(/\s+/g, ' ').trim();
}

export const SHIPPED: Shipped[] = Object.entries(files)
  .map(([path, text]) => {
    const file = path.split('/').pop() ?? path;
    const id = file.replace(/\.yaml$/, '');
    const d = parseDocument(text).get('description');
    return { id, file, text, description: typeof d === 'string' ? d : '', about: about(text) };
  })
  .sort((a, b) => (a.id === DEFAULT_SCENARIO ? -1 : b.id === DEFAULT_SCENARIO ? 1 : a.id.localeCompare(b.id)));

export function shipped(id: string): Shipped | undefined {
  return SHIPPED.find((s) => s.id === id);
}
