/**
 * Page tables, kept as maps (the model does not lay descriptors out in memory). A table is named
 * by a small integer id; STE.S2TTB and CD.TTB0 hold `tableBase(id)`, a pseudo physical address,
 * so the SMMU finds the table the way hardware does: through its configuration structures.
 *
 * Each table belongs to one translation context (`ctx`), the unit the metrics and the oracle
 * reason about: an mm, a VM's stage 2, an SMMU domain, a guest stage 1 under nesting.
 */

/** Leaf levels for the 4 KiB granule, 48-bit input: level 3 = 4K page, 2 = 2M block, 1 = 1G. */
export const LEVEL_OF_SIZE: Record<number, number> = { 0: 3, 9: 2, 18: 1 };
export const SIZE_OF_LEVEL: Record<number, number> = { 3: 0, 2: 9, 1: 18 };

/** What changed in a page table (PageTableListener.onChange). */
export const TableOp = {
  /** A mapping was added (map). */
  MAP: 1,
  /** Mappings were removed: [page, page+count). */
  UNMAP: 2,
  /** An unmapped page of the linear region was mapped again (a fault bringing it back). */
  REMAP: 3,
  /** The whole table: a new linear region (mapLinear). */
  MAP_LINEAR: 4,
  /** The whole table: every mapping write-protected (dirty logging); addresses unchanged. */
  PROTECT: 5,
  /** The whole table: every mapping removed (the domain or VM is torn down). */
  UNMAP_ALL: 6,
} as const;

/**
 * Observer of page-table changes (the oracle's shadow state). `count` < 0 means the whole table.
 * Only called when installed; the hardware never needs it.
 */
export interface PageTableListener {
  onTableChange(table: PageTable, op: number, page: number, count: number): void;
}

export class PageTable {
  /** 4K mappings: input page -> output page. */
  readonly pages = new Map<number, number>();
  /** 2M blocks: 512-page-aligned input page -> output page. */
  readonly blocks2m = new Map<number, number>();
  /** 1G blocks. */
  readonly blocks1g = new Map<number, number>();
  /**
   * One linear region of 4K pages [linearStart, linearStart+linearCount) -> linearOut + offset,
   * answered arithmetically (a VM's whole memory without a Map entry per page); `holes` are its
   * unmapped pages.
   */
  linearStart = 0;
  linearCount = 0;
  linearOut = 0;
  readonly holes = new Set<number>();
  /**
   * Bumped on every change of the table (map, unmap, remap). The oracle keys its obligations on
   * it; the hardware never reads it.
   */
  version = 0;
  /** Observer of changes (Memory.setTableListener); null when nobody watches. */
  listener: PageTableListener | null = null;
  /** Result of the last `walk`: level and size of the leaf found. */
  lastLevel = 3;
  lastSizeLog2 = 0;

  constructor(readonly id: number, readonly ctx: number, readonly name: string, readonly levels = 4) {}

  map(page: number, out: number, sizeLog2 = 0): void {
    if (sizeLog2 === 0) this.pages.set(page, out);
    else if (sizeLog2 === 9) this.blocks2m.set(page - (page % 512), out - (out % 512));
    else if (sizeLog2 === 18) this.blocks1g.set(page - (page % 262144), out - (out % 262144));
    else throw new Error(`unsupported block size 2^${sizeLog2} pages`);
    this.version++;
    this.listener?.onTableChange(this, TableOp.MAP, page - (page % 2 ** sizeLog2), 2 ** sizeLog2);
  }

  /** Map [start, start+count) linearly to out.. (replaces any previous linear region). */
  mapLinear(start: number, count: number, out: number): void {
    this.linearStart = start; this.linearCount = count; this.linearOut = out;
    this.holes.clear();
    this.version++;
    this.listener?.onTableChange(this, TableOp.MAP_LINEAR, start, -1);
  }

  /**
   * Dirty logging: every mapping becomes read-only. Nothing changes address, but translations
   * cached before (writable) must go: a whole-table change for the oracle.
   */
  writeProtect(): void {
    this.version++;
    this.listener?.onTableChange(this, TableOp.PROTECT, 0, -1);
  }

  /** Remove every mapping (the owner — a domain, a VM — is being torn down). */
  unmapAll(): void {
    this.linearCount = 0;
    this.holes.clear();
    this.pages.clear();
    this.blocks2m.clear();
    this.blocks1g.clear();
    this.version++;
    this.listener?.onTableChange(this, TableOp.UNMAP_ALL, 0, -1);
  }

  private inLinear(page: number): boolean {
    return page >= this.linearStart && page < this.linearStart + this.linearCount;
  }

  /** Remove the mapping containing `page` (whatever its size). Returns the size removed or -1. */
  unmap(page: number): number {
    this.version++;
    let size = -1;
    if (this.pages.delete(page)) size = 0;
    else if (this.inLinear(page) && !this.holes.has(page)) { this.holes.add(page); size = 0; }
    else if (this.blocks2m.delete(page - (page % 512))) size = 9;
    else if (this.blocks1g.delete(page - (page % 262144))) size = 18;
    if (size >= 0 && this.listener !== null) {
      const span = 2 ** size;
      this.listener.onTableChange(this, TableOp.UNMAP, page - (page % span), span);
    }
    return size;
  }

  /** Re-map a page of the linear region that was unmapped (a fault bringing it back). */
  remapLinear(page: number): boolean {
    if (!this.holes.delete(page)) return false;
    this.version++;
    this.listener?.onTableChange(this, TableOp.REMAP, page, 1);
    return true;
  }

  /** Unmap [page, page+count) 4K pages; returns how many 4K mappings were removed. */
  unmapRange(page: number, count: number): number {
    let n = 0;
    if (this.linearCount > 0) {
      const a = Math.max(page, this.linearStart), b = Math.min(page + count, this.linearStart + this.linearCount);
      for (let p = a; p < b; p++) if (!this.holes.has(p)) { this.holes.add(p); n++; }
    }
    if (count <= this.pages.size) {
      for (let p = page; p < page + count; p++) if (this.pages.delete(p)) n++;
    } else {
      for (const p of this.pages.keys()) if (p >= page && p < page + count && this.pages.delete(p)) n++;
    }
    this.version++;
    this.listener?.onTableChange(this, TableOp.UNMAP, page, count);
    return n;
  }

  /** Software walk: output page for `page` or -1. Sets lastLevel / lastSizeLog2. No allocation. */
  walk(page: number): number {
    if (page >= this.linearStart && page < this.linearStart + this.linearCount && (this.holes.size === 0 || !this.holes.has(page))) {
      this.lastLevel = 3; this.lastSizeLog2 = 0;
      return this.linearOut + (page - this.linearStart);
    }
    const o = this.pages.get(page);
    if (o !== undefined) { this.lastLevel = 3; this.lastSizeLog2 = 0; return o; }
    const b = page - (page % 512);
    const o2 = this.blocks2m.get(b);
    if (o2 !== undefined) { this.lastLevel = 2; this.lastSizeLog2 = 9; return o2 + (page - b); }
    const g = page - (page % 262144);
    const o3 = this.blocks1g.get(g);
    if (o3 !== undefined) { this.lastLevel = 1; this.lastSizeLog2 = 18; return o3 + (page - g); }
    return -1;
  }

  get mappedPages(): number {
    return this.linearCount - this.holes.size + this.pages.size + this.blocks2m.size * 512 + this.blocks1g.size * 262144;
  }
}

/** The pseudo physical address of table `id` (what TTB0 / S2TTB hold). */
export const tableBase = (id: number): number => (id + 1) * 0x1000_0000;
export const tableIdOf = (base: number): number => base / 0x1000_0000 - 1;

/** All page tables of the system, by id. Also what the SMMU "reads" when it walks. */
export class Memory {
  private readonly tables: (PageTable | undefined)[] = [];
  private tableListener: PageTableListener | null = null;

  newTable(ctx: number, name: string): PageTable {
    const t = new PageTable(this.tables.length, ctx, name);
    t.listener = this.tableListener;
    this.tables.push(t);
    return t;
  }

  /** Watch every table, existing and future (null: stop). */
  setTableListener(l: PageTableListener | null): void {
    this.tableListener = l;
    for (const t of this.tables) if (t !== undefined) t.listener = l;
  }

  /**
   * Forget a table nobody can reach any more (its VM or domain is gone and no STE or CD points
   * at it), so that long runs with VM churn do not keep every table ever made. Its id is not
   * reused.
   */
  release(t: PageTable): void {
    if (this.tables[t.id] === t) this.tables[t.id] = undefined;
  }

  table(id: number): PageTable | undefined {
    return this.tables[id];
  }

  tableAt(base: number): PageTable | undefined {
    if (base <= 0 || base % 0x1000_0000 !== 0) return undefined;
    return this.tables[tableIdOf(base)];
  }

  get count(): number { return this.tables.length; }
}
