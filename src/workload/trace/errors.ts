/**
 * A malformed trace line: the 1-based line number and what is wrong with it. The CLI prints it
 * as `file:line: reason` (one line, exit code 2). No Node or DOM imports.
 */
export class TraceError extends Error {
  constructor(readonly lineNo: number, readonly reason: string) {
    super(lineNo > 0 ? `line ${lineNo}: ${reason}` : reason);
    this.name = 'TraceError';
  }

  /** `file:line: reason` */
  located(file: string): string {
    return this.lineNo > 0 ? `${file}:${this.lineNo}: ${this.reason}` : `${file}: ${this.reason}`;
  }
}

/** Bad-line policy shared by both readers: fail on the first one, or count and go on. */
export interface BadLinePolicy {
  /** Skip malformed lines (counted) instead of failing on the first one. */
  skipBad?: boolean;
  /** Called for each skipped line (e.g. to print the first few). */
  onBad?: (err: TraceError) => void;
}
