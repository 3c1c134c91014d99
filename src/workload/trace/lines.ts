/**
 * Streaming line splitting: decode chunks (bytes or text) as UTF-8 and hand each line to a
 * callback, synchronously within a chunk (no promise per line). Memory is one chunk plus one
 * partial line, whatever the length of the input. No Node or DOM imports (TextDecoder is a
 * global in both).
 */
export async function forEachLine(
  chunks: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
  onLine: (line: string) => void,
): Promise<void> {
  const dec = new TextDecoder('utf-8');
  let tail = '';
  for await (const c of chunks as AsyncIterable<Uint8Array | string>) {
    const text = typeof c === 'string' ? c : dec.decode(c, { stream: true });
    if (text.length === 0) continue;
    let start = 0;
    let nl = text.indexOf('\n');
    if (nl < 0) { tail += text; continue; }
    if (tail.length > 0) {
      onLine(tail + text.slice(0, nl));
      tail = '';
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    while (nl >= 0) {
      onLine(text.slice(start, nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    tail = text.slice(start);
  }
  tail += dec.decode();
  if (tail.length > 0) onLine(tail);
}

/** Split a whole text (tests, small inputs) the same way. */
export function linesOfText(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let nl = text.indexOf('\n');
  while (nl >= 0) { out.push(text.slice(start, nl)); start = nl + 1; nl = text.indexOf('\n', start); }
  if (start < text.length) out.push(text.slice(start));
  return out;
}
