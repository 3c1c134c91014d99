/**
 * The oracle's price: the same run (built-in scenario, one policy) with and without the oracle
 * attached. No fault is injected, so both runs simulate exactly the same events. The benchmark
 * (`btmsim bench`) and the README quote the ratio; the design goal is at most about 2x.
 */
import { builtinScenario } from '../bench/sim.js';
import { Simulation } from '../sim/simulation.js';
import type { PolicyName, Scenario } from '../workload/schema.js';
import { Oracle } from './oracle.js';

export interface OracleBenchResult {
  policy: PolicyName;
  events: number;
  /** Simulated events per wall-clock second without the oracle (best of `reps`). */
  eventsPerSec: number;
  /** The same with the oracle attached. */
  eventsPerSecWithOracle: number;
  /** eventsPerSec / eventsPerSecWithOracle: how many times slower a checked run is. */
  slowdown: number;
  /** Oracle checks of the measured run (hits checked, fills recorded). */
  hitsChecked: number;
  fills: number;
}

function once(sc: Scenario, policy: PolicyName, oracle: boolean): { events: number; seconds: number; hits: number; fills: number } {
  let o: Oracle | null = null;
  const sim = new Simulation(sc, policy, oracle ? { attach: (s) => { o = Oracle.attach(s); } } : {});
  const t0 = performance.now();
  sim.run();
  const seconds = (performance.now() - t0) / 1000;
  const r = o !== null ? (o as Oracle).result() : null;
  return {
    events: sim.events, seconds,
    hits: r === null ? 0 : r.checked.smmuHits + r.checked.atcHits + r.checked.cpuHits, fills: r === null ? 0 : r.checked.fills,
  };
}

/** Events/s of the built-in scenario without and with the oracle (interleaved runs, best of `reps`). */
export function benchOracle(events = 2_000_000, policy: PolicyName = 'btm-2020', reps = 3): OracleBenchResult {
  const sc: Scenario = { ...builtinScenario(), duration: { events } };
  const warm: Scenario = { ...sc, duration: { events: Math.min(200_000, events) } };
  once(warm, policy, false);
  once(warm, policy, true);
  let best = Infinity;
  let bestO = Infinity;
  let hits = 0;
  let fills = 0;
  for (let i = 0; i < reps; i++) {
    best = Math.min(best, once(sc, policy, false).seconds);
    const r = once(sc, policy, true);
    bestO = Math.min(bestO, r.seconds);
    hits = r.hits;
    fills = r.fills;
  }
  const eventsPerSec = events / best;
  const eventsPerSecWithOracle = events / bestO;
  return {
    policy, events, eventsPerSec, eventsPerSecWithOracle,
    slowdown: Math.round((eventsPerSec / eventsPerSecWithOracle) * 1000) / 1000, hitsChecked: hits, fills,
  };
}
