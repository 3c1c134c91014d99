/**
 * One pass over a trace, line by line: format detection (a JSON object on the first non-blank
 * line = btmsim JSONL, anything else = QEMU log), parsing and validation with line numbers, the
 * QEMU importer, statistics, and any number of replays fed the same events (as recorded and
 * what-ifs side by side, so the input is read once and memory stays constant). Optionally the
 * events are also written out as JSONL (conversion of a QEMU trace).
 *
 * No Node or DOM imports: the CLI gives it lines (see lines.ts) and prints the result.
 */
import type { BadLinePolicy, TraceError } from './errors.js';
import { JsonlReader, eventToJson, type HeaderEvent, type TraceEvent } from './jsonl.js';
import { QemuImporter, type QemuImportOptions, type QemuImportStats } from './qemu-import.js';
import { QemuReader } from './qemu.js';
import { Replayer, type ReplayMetrics, type ReplayOptions } from './replay.js';
import { JsonlStatsCollector, QemuStatsCollector, sortedCounts, type JsonlStats, type QemuStats } from './stats.js';

export type TraceFormat = 'jsonl' | 'qemu';

export interface PipelineOptions extends BadLinePolicy {
  /** Input format; undefined = detect from the first non-blank line. */
  format?: TraceFormat;
  /** Only statistics (QEMU traces), no modelling. */
  statsOnly?: boolean;
  /** Replays to run on the events (none with statsOnly). */
  runs?: ReplayOptions[];
  /** Receives every event as a JSONL line (conversion). */
  jsonlSink?: (line: string) => void;
  qemu?: QemuImportOptions;
}

export interface PipelineResult {
  format: TraceFormat;
  lines: number;
  badLines: number;
  /** QEMU event names not known (counted, not errors). */
  unknownEvents: Record<string, number>;
  header: HeaderEvent | null;
  /** QEMU traces: what the trace contains (as `--stats`). */
  stats: QemuStats | null;
  /** JSONL traces with statsOnly: what the trace contains. */
  jsonlStats: JsonlStats | null;
  /** QEMU traces: what the importer rebuilt and inferred. */
  import: QemuImportStats | null;
  /** One per ReplayOptions, same order. */
  runs: ReplayMetrics[];
  /** JSONL traces: the metrics the recording run wrote in its `end` event. */
  recorded: Record<string, unknown> | null;
}

export class TracePipeline {
  private format: TraceFormat | undefined;
  private qemuReader: QemuReader | null = null;
  private jsonlReader: JsonlReader | null = null;
  private stats: QemuStatsCollector | null = null;
  private jstats: JsonlStatsCollector | null = null;
  private importer: QemuImporter | null = null;
  private readonly replayers: Replayer[];
  private pendingBlank = 0;

  constructor(private readonly o: PipelineOptions = {}) {
    this.format = o.format;
    this.replayers = o.statsOnly === true ? [] : (o.runs ?? [{}]).map((r) => new Replayer(r));
  }

  /** Feed one line (without its newline). Throws TraceError for a malformed line unless skipBad. */
  push(line: string): void {
    if (this.format === undefined) {
      const s = line.trim();
      if (s.length === 0) { this.pendingBlank++; return; }
      this.start(s.startsWith('{') ? 'jsonl' : 'qemu');
    }
    if (this.qemuReader !== null) this.qemuReader.push(line);
    else this.jsonlReader!.push(line);
  }

  private start(f: TraceFormat): void {
    this.format = f;
    const policy: BadLinePolicy = { skipBad: this.o.skipBad, onBad: (e: TraceError) => this.o.onBad?.(e) };
    if (f === 'qemu') {
      const stats = new QemuStatsCollector();
      this.stats = stats;
      if (this.o.statsOnly !== true || this.o.jsonlSink !== undefined) {
        this.importer = new QemuImporter((ev, lineNo) => this.event(ev, lineNo), this.o.qemu ?? {});
        const imp = this.importer;
        this.qemuReader = new QemuReader((l, m) => { stats.onLine(l, m); imp.onLine(l, m); }, policy);
      } else {
        this.qemuReader = new QemuReader(stats.onLine, policy);
      }
    } else {
      if (this.o.statsOnly === true) {
        const js = new JsonlStatsCollector();
        this.jstats = js;
        this.jsonlReader = new JsonlReader((ev) => js.onEvent(ev), policy);
      } else {
        this.jsonlReader = new JsonlReader((ev, lineNo) => this.event(ev, lineNo), policy);
      }
    }
    // Blank lines before the first real one still count as lines.
    for (let i = 0; i < this.pendingBlank; i++) {
      if (this.qemuReader !== null) this.qemuReader.push(''); else this.jsonlReader!.push('');
    }
    this.pendingBlank = 0;
  }

  private event(ev: TraceEvent, lineNo: number): void {
    for (let i = 0; i < this.replayers.length; i++) this.replayers[i].apply(ev, lineNo);
    if (this.o.jsonlSink !== undefined) this.o.jsonlSink(eventToJson(ev));
  }

  finish(): PipelineResult {
    if (this.format === undefined) this.start(this.o.format ?? 'qemu');
    this.importer?.finish();
    const reader = this.qemuReader ?? this.jsonlReader!;
    const header = this.replayers[0]?.header ?? this.jsonlReader?.header ?? null;
    const unknown = this.qemuReader?.unknown ?? new Map<string, number>();
    return {
      format: this.format!,
      lines: reader.lines,
      badLines: reader.badLines,
      unknownEvents: sortedCounts(unknown),
      header,
      stats: this.stats !== null && this.qemuReader !== null ? this.stats.result(this.qemuReader) : null,
      jsonlStats: this.jstats !== null ? this.jstats.result(reader) : null,
      import: this.importer?.stats ?? null,
      runs: this.replayers.map((r) => (r.hw === null ? null : r.result())).filter((x): x is ReplayMetrics => x !== null),
      recorded: this.replayers[0]?.recorded ?? null,
    };
  }
}

/** Run a pipeline over an array of lines (tests, small inputs). */
export function runLines(lines: Iterable<string>, o: PipelineOptions = {}): PipelineResult {
  const p = new TracePipeline(o);
  for (const l of lines) p.push(l);
  return p.finish();
}
