/**
 * Reading a scenario file for a command: every problem becomes a UserError (one line per issue,
 * exit 2, no stack trace).
 */
import { readFileSync } from 'node:fs';
import { UserError } from './errors.js';
import { formatIssue, loadScenarioText, type ScenarioIssue } from '../workload/load.js';
import type { Scenario } from '../workload/schema.js';

/** How many issues a ScenarioFileError message lists before `... and N more`. */
export const MAX_LISTED_ISSUES = 10;

/** A scenario file that does not validate; `issues` holds all of them, sorted by position. */
export class ScenarioFileError extends UserError {
  constructor(readonly issues: ScenarioIssue[]) {
    super(formatScenarioIssues(issues));
    this.name = 'ScenarioFileError';
  }
}

/**
 * `file:line:col: path: message`, one issue per line, at most MAX_LISTED_ISSUES lines, then
 * `... and N more` if there are more.
 */
export function formatScenarioIssues(issues: readonly ScenarioIssue[], max = MAX_LISTED_ISSUES): string {
  const lines = issues.slice(0, max).map(formatIssue);
  if (issues.length > max) lines.push(`... and ${issues.length - max} more`);
  return lines.join('\n');
}

/**
 * Reads and validates the scenario at `path` (YAML or JSON). Throws UserError
 * `<path>: cannot read scenario: <reason>` if the file cannot be read, ScenarioFileError (a
 * UserError) if it does not validate.
 */
export function readScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read scenario: ${readReason(e)}`);
  }
  const r = loadScenarioText(text, path);
  if (!r.ok) throw new ScenarioFileError(r.issues);
  return r.scenario;
}

function readReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES':
    case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a component of the path is not a directory';
    case 'ELOOP': return 'too many symbolic links';
    default: {
      const msg = e instanceof Error ? e.message : String(e);
      return msg.split('\n')[0].replace(/^[A-Z]+: /, '');
    }
  }
}
