/**
 * The scenario editor: a plain textarea with a line-number gutter. Lines with a validation
 * issue are highlighted (gutter and a band behind the text); the issue list under it gives
 * `file:line:col: path: message` exactly as the CLI prints it, each a button that moves the
 * caret to the spot.
 */
import { useRef } from 'preact/hooks';
import type { ScenarioIssue } from '../../src/workload/load.js';

export type Issue = ScenarioIssue & { text: string };

const LINE_H = 20; // px; matches .editor line-height in styles.css
const PAD = 8; // px; matches the textarea padding

export function Editor(props: {
  value: string;
  onInput: (text: string) => void;
  issues: Issue[];
  disabledNote?: string;
}) {
  const ta = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const bands = useRef<HTMLDivElement>(null);
  const lineCount = props.value.split('\n').length;
  const errLines = new Set(props.issues.map((i) => i.line));

  const sync = () => {
    const t = ta.current;
    if (!t) return;
    if (gutter.current) gutter.current.scrollTop = t.scrollTop;
    if (bands.current) bands.current.style.transform = `translate(${-t.scrollLeft}px, ${-t.scrollTop}px)`;
  };

  const goTo = (line: number, col: number) => {
    const t = ta.current;
    if (!t) return;
    const lines = t.value.split('\n');
    let off = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) off += lines[i].length + 1;
    const lineLen = lines[line - 1]?.length ?? 0;
    const start = off + Math.min(Math.max(col - 1, 0), lineLen);
    t.focus();
    t.setSelectionRange(start, off + lineLen);
    // bring the line into view (the textarea does not scroll to a selection set from script everywhere)
    const y = (line - 1) * LINE_H;
    if (y < t.scrollTop || y > t.scrollTop + t.clientHeight - 2 * LINE_H) t.scrollTop = Math.max(0, y - t.clientHeight / 3);
    sync();
  };

  return (
    <div class="editor-wrap">
      <div class="editor">
        <div class="gutter" ref={gutter} aria-hidden="true">
          <div class="gutter-inner">
            {Array.from({ length: lineCount }, (_, i) => (
              <div key={i} class={errLines.has(i + 1) ? 'ln err' : 'ln'} data-line={i + 1}>{i + 1}</div>
            ))}
          </div>
        </div>
        <div class="code">
          <div class="bands" ref={bands} aria-hidden="true">
            {[...errLines].map((l) => (
              <div key={l} class="band" data-line={l} style={{ top: `${PAD + (l - 1) * LINE_H}px` }} />
            ))}
          </div>
          <textarea
            id="yaml"
            ref={ta}
            value={props.value}
            onInput={(e) => props.onInput(e.currentTarget.value)}
            onScroll={sync}
            spellcheck={false}
            autocomplete="off"
            autocapitalize="off"
            wrap="off"
            rows={22}
            aria-invalid={props.issues.length > 0}
            aria-describedby="yaml-help yaml-issues"
          />
        </div>
      </div>
      <div id="yaml-issues" role="alert">
        {props.issues.length > 0 && (
          <>
            <p class="issues-title">
              {props.issues.length === 1 ? 'The scenario has a mistake:' : `The scenario has ${props.issues.length} mistakes:`}
            </p>
            <ul class="issues">
              {props.issues.map((i) => (
                <li key={`${i.line}:${i.col}:${i.path}`}>
                  <button type="button" class="issue" data-line={i.line} onClick={() => goTo(i.line, i.col)}
                    title={`Go to line ${i.line}, column ${i.col}`}>
                    {i.text}
                  </button>
                </li>
              ))}
            </ul>
          </>
        )}
      </div>
      {props.disabledNote && <p class="note">{props.disabledNote}</p>}
    </div>
  );
}
