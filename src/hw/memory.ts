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
  }

  /** Map [start, start+count) linearly to out.. (replaces any previous linear region). */
  mapLinear(start: number, count: number, out: number): void {
    this.linearStart = start; this.linearCount = count; this.linearOut = out;
    this.holes.clear();
    this.version++;
  }

  private inLinear(page: number): boolean {
    return page >= this.linearStart && page < this.linearStart + this.linearCount;
  }

  /** Remove the mapping containing `page` (whatever its size). Returns the size removed or -1. */
  unmap(page: number): number {
    this.version++;
    if (this.pages.delete(page)) return 0;
    if (this.inLinear(page) && !this.holes.has(page)) { this.holes.add(page); return 0; }
    if (this.blocks2m.delete(page - (page % 512))) return 9;
    if (this.blocks1g.delete(page - (page % 262144))) return 18;
    return -1;
  }

  /** Re-map a page of the linear region that was unmapped (a fault bringing it back). */
  remapLinear(page: number): boolean {
    if (!this.holes.delete(page)) return false;
    this.version++;
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
  private readonly tables: PageTable[] = [];

  newTable(ctx: number, name: string): PageTable {
    const t = new PageTable(this.tables.length, ctx, name);
    this.tables.push(t);
    return t;
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
