/**
 * `btmsim check` (and `run --check`) without Node: run a scenario's policies under the oracle,
 * optionally with faults, and turn the verdicts into JSON and text.
 */
import { runScenario, type RunOutput } from '../sim/run.js';
import type { PolicyName, Scenario } from '../workload/schema.js';
import { FAULTS, type FaultName } from './faults.js';
import type { OracleResult, Violation } from './oracle.js';

export const CHECK_VERSION = 1;

export interface PolicyCheck {
  policy: PolicyName;
  simulatedNs: number;
  events: number;
  dmaTranslations: number;
  oracle: OracleResult;
}

export interface CheckOutput {
  version: number;
  scenario: string;
  seed: number;
  faults: FaultName[];
  /** No violation under any policy. */
  clean: boolean;
  results: PolicyCheck[];
}

export interface CheckOptions {
  faults?: readonly FaultName[];
  /** The scenario as the user named it (path), for `reproduce` lines; omitted = built-in. */
  scenarioRef?: string;
  onProgress?: (policy: PolicyName, fraction: number) => void;
}

/** Run every policy with the oracle attached. */
export function checkScenario(sc: Scenario, policies: PolicyName[], opts: CheckOptions = {}): CheckOutput {
  const out = runScenario(sc, policies, {
    ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}),
    check: { faults: opts.faults ?? [], ...(opts.scenarioRef !== undefined ? { scenarioRef: opts.scenarioRef } : {}) },
  });
  return checkOutputOf(out, opts.faults ?? []);
}

/** The check view of a checked run (`runScenario` with `check`). */
export function checkOutputOf(out: RunOutput, faults: readonly FaultName[]): CheckOutput {
  const results: PolicyCheck[] = out.results.map((r) => ({
    policy: r.policy, simulatedNs: r.metrics.simulatedNs, events: r.metrics.events,
    dmaTranslations: r.metrics.dmaTranslations, oracle: r.oracle!,
  }));
  return {
    version: CHECK_VERSION, scenario: out.scenario, seed: out.seed, faults: [...faults],
    clean: results.every((r) => r.oracle.clean), results,
  };
}

// ------------------------------------------------------------------ text

const ms = (ns: number): string => `${(ns / 1e6).toFixed(6)} ms`;

/** One violation as an indented block. */
export function formatViolation(v: Violation): string {
  const lines: string[] = [];
  lines.push(`[${v.n}] ${v.rule} (${v.class === 'stale' ? 'stale translation: DMA after free' : 'aliasing: cross-context access'}) at ${ms(v.timeNs)} — policy ${v.policy}, seed ${v.seed}${v.faults.length > 0 ? `, fault ${v.faults.join(',')}` : ', no fault injected'}`);
  lines.push(`  rule:   ${v.ruleText}`);
  lines.push(`  event:  ${v.event}`);
  if (v.entry !== null) {
    lines.push(`  entry:  ${v.unit} ${v.cache} slot ${v.slot}: ${v.entry.text}`);
    lines.push(`          filled for ${v.entry.context} at ${ms(v.entry.filledNs)}`);
  } else {
    lines.push(`  entry:  none: ${v.unit}'s walk through that configuration found no mapping`);
  }
  if (v.requester.ctx !== v.entry?.ctx) lines.push(`  requester: ${v.requester.context}${v.requester.tags !== '' ? `, looks up ${v.requester.tags}` : ''}`);
  if (v.obligation !== null) {
    const o = v.obligation;
    lines.push(`  obligation: ${o.change} in ${o.table} at ${o.changedNs >= 0 ? ms(o.changedNs) : '?'}; software considered it invalidated at ${o.doneNs >= 0 ? ms(o.doneNs) : '?'}`);
    if (o.doneBy !== '') lines.push(`          by: ${o.doneBy}`);
    lines.push(`          discharged only by: ${o.expected}`);
  }
  if (v.explanation.length > 0) {
    lines.push(v.class === 'stale' ? '  why it survived:' : '  why:');
    for (const e of v.explanation) lines.push(`    - ${e}`);
  }
  if (v.history.length > 0) {
    lines.push('  invalidations that passed it by:');
    for (const h of v.history) lines.push(`    ${h}`);
  }
  if (v.hits > 1) lines.push(`  used ${v.hits} times in all`);
  lines.push(`  reproduce: ${v.reproduce}`);
  return lines.join('\n');
}

function faultCell(o: OracleResult): string {
  if (o.faults.length === 0) return '-';
  return o.faults.map((f) => (f.exercised ? `${f.name} x${f.activations}` : `${f.name}: not exercised`)).join(', ');
}

/** The verdict table, notes on faults the scenario cannot exercise, and the first `max` violations. */
export function formatCheck(out: CheckOutput, max = 3): string {
  const lines: string[] = [];
  const simMs = out.results.length > 0 ? (out.results[0].simulatedNs / 1e6).toFixed(1) : '0';
  lines.push(`btmsim check: scenario ${out.scenario}, seed ${out.seed}, ${simMs} ms simulated, ` +
    `faults injected: ${out.faults.length > 0 ? out.faults.join(', ') : 'none'}`);
  lines.push('');
  const rows: string[][] = [['policy', 'verdict', 'violations', 'accesses', 'hits checked', 'by rule', 'faults']];
  for (const r of out.results) {
    const o = r.oracle;
    const rules = Object.entries(o.byRule).map(([k, n]) => `${k} ${n}`).join(', ');
    rows.push([r.policy, o.clean ? 'clean' : 'VIOLATIONS', String(o.violations), String(o.violatingAccesses),
      String(o.checked.smmuHits + o.checked.atcHits + o.checked.cpuHits), rules === '' ? '-' : rules, faultCell(o)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  for (const row of rows) lines.push(row.map((cell, c) => (c >= 2 && c <= 4 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd());

  // Faults: say clearly where they could not act.
  for (const name of out.faults) {
    const per = out.results.map((r) => ({ policy: r.policy, f: r.oracle.faults.find((x) => x.name === name)! }));
    const idle = per.filter((p) => !p.f.exercised);
    if (idle.length === 0) continue;
    lines.push('');
    const def = FAULTS.find((f) => f.name === name)!;
    if (idle.length === per.length) {
      lines.push(`fault ${name}: not exercised by this scenario: needs ${def.needs}.`);
      const byReason = new Map<string, string[]>();
      for (const p of idle) {
        const why = p.f.blocker ?? 'the run gave it no occasion to act (0 activations)';
        byReason.set(why, [...(byReason.get(why) ?? []), p.policy]);
      }
      for (const [why, ps] of byReason) lines.push(`  ${ps.join(', ')}: ${why}`);
    } else {
      lines.push(`fault ${name}: not exercised under ${idle.map((p) => `${p.policy} (${p.f.blocker ?? 'the run gave it no occasion to act'})`).join('; ')}; it needs ${def.needs}.`);
    }
  }
  for (const name of out.faults) {
    const quiet = out.results.filter((r) => { const f = r.oracle.faults.find((x) => x.name === name)!; return f.exercised && r.oracle.clean; });
    if (quiet.length > 0) {
      lines.push('');
      lines.push(`fault ${name} acted under ${quiet.map((r) => r.policy).join(', ')} but no access used a bad translation in this run ` +
        '(the entries it left were evicted or never touched again).');
    }
  }

  const total = out.results.reduce((s, r) => s + r.oracle.violations, 0);
  if (total === 0) {
    lines.push('');
    lines.push(out.faults.length === 0
      ? 'clean: no TLB, ATC or CPU TLB hit used a translation software considered invalidated, and none used another context\'s entry.'
      : 'no violation observed.');
    return lines.join('\n') + '\n';
  }
  // First violation of each violating policy, then more, up to `max`.
  const picked: Violation[] = [];
  const lists = out.results.map((r) => r.oracle.list);
  for (let k = 0; picked.length < max; k++) {
    let any = false;
    for (const l of lists) {
      if (k < l.length && picked.length < max) { picked.push(l[k]); any = true; }
    }
    if (!any) break;
  }
  lines.push('');
  lines.push(`${total} violation(s) in all; the first ${picked.length} (all of them with --json):`);
  for (const v of picked) {
    lines.push('');
    lines.push(formatViolation(v));
  }
  return lines.join('\n') + '\n';
}

/** `--list-faults`. */
export function formatFaultList(): string {
  const out: string[] = [];
  for (const f of FAULTS) {
    out.push(`${f.name}`);
    out.push(`  ${f.summary}`);
    out.push(`  models: ${f.realBug}`);
    out.push(`  breaks: ${f.rules.join(', ')}`);
    out.push(`  needs:  ${f.needs}`);
    out.push('');
  }
  return out.join('\n');
}
