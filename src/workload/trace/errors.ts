/**
 * A malformed trace line: the 1-based line number, the 1-based column where the problem is
 * (0 when the whole line is at fault) and what is wrong. The CLI prints it as
 * `file:line:col: reason` (one line, exit code 2). No Node or DOM imports.
 */
export class TraceError extends Error {
  constructor(readonly lineNo: number, readonly reason: string, readonly col = 0) {
    super(lineNo > 0 ? `line ${lineNo}${col > 0 ? `:${col}` : ''}: ${reason}` : reason);
    this.name = 'TraceError';
  }

  /** `file:line:col: reason` (`file:line: reason` without a column). */
  located(file: string): string {
    if (this.lineNo <= 0) return `${file}: ${this.reason}`;
    return `${file}:${this.lineNo}${this.col > 0 ? `:${this.col}` : ''}: ${this.reason}`;
  }
}

/** Bad-line policy shared by both readers: fail on the first one, or count and go on. */
export interface BadLinePolicy {
  /** Skip malformed lines (counted) instead of failing on the first one. */
  skipBad?: boolean;
  /** Called for each skipped line (e.g. to print the first few). */
  onBad?: (err: TraceError) => void;
}
