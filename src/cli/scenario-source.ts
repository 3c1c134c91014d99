import { readFileSync } from 'node:fs';
import { BUILTIN_SCENARIO_NAME, BUILTIN_SCENARIO_YAML } from '../workload/builtin.js';
import { UserError } from './errors.js';
import { readScenarioFile } from './scenario-file.js';

/** The scenario text as given (file, or the built-in scenario) and where it came from (for reports). */
export function scenarioSource(file: string | undefined): { text: string; source: string } {
  if (file === undefined) return { text: BUILTIN_SCENARIO_YAML, source: `<built-in ${BUILTIN_SCENARIO_NAME}>` };
  try {
    return { text: readFileSync(file, 'utf8'), source: file };
  } catch {
    readScenarioFile(file); // throws the one-line "<file>: cannot read scenario: <reason>"
    throw new UserError(`${file}: cannot read scenario`);
  }
}
