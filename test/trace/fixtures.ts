/**
 * Small synthetic QEMU traces, line for line as QEMU 10's log backend prints them, for SMMUs and
 * configurations the shared traces do not cover (stage-2-only, nested, lazy invalidation,
 * capacity flushes, range splitting).
 */

export class QemuTraceBuilder {
  readonly lines: string[] = [];
  private usec = 0;
  /** Counters as QEMU keeps them (per device config; only printed). */
  private hits = 0;
  private misses = 0;
  /** Lookups the builder made QEMU report. */
  lookupHits = 0;
  lookupMisses = 0;

  constructor(readonly timestamps = true) {}

  line(tid: number, text: string): this {
    this.usec += 3;
    const t = `1795459900.${String(this.usec).padStart(6, '0')}`;
    this.lines.push(this.timestamps ? `${tid}@${t}:${text}` : text);
    return this;
  }

  /** The driver reading SMMU_IDR0 (stage support): 0xd44101b = S1P+S2P, 0xd441019 = S2P only, 0xd44101a = S1P only. */
  idr0(tid: number, v: number): this {
    return this.line(tid, `smmuv3_read_mmio addr: 0x0 val:0x${v.toString(16)} size: 0x4(0)`);
  }

  /** One consumption: commands (opcode name + handler lines), then consume_out. */
  commands(tid: number, cmds: [string, string[]][]): this {
    let cons = 0;
    for (const [name, handlers] of cmds) {
      this.line(tid, `smmuv3_cmdq_consume prod=${cmds.length} cons=${cons++} prod.wrap=0 cons.wrap=0`);
      this.line(tid, `smmuv3_cmdq_opcode <--- SMMU_CMD_${name}`);
      for (const h of handlers) this.line(tid, h);
    }
    this.line(tid, `smmuv3_cmdq_consume_out prod:${cmds.length}, cons:${cmds.length}, prod_wrap:0, cons_wrap:0 `);
    this.line(tid, `smmuv3_write_mmio addr: 0x98 val:0x${cmds.length.toString(16)} size: 0x4(0)`);
    return this;
  }

  /**
   * One translation. `walk` = the leaf of the walk on a miss: stage-1 and/or stage-2 results
   * (stage-2 `in` is the IPA), with `sizeMiB` for a block. `flush` puts QEMU's capacity flush
   * before the insert.
   */
  translate(o: {
    tid: number; sid: number; asid: number; vmid: number; iova: number; out: number; stage: 1 | 2 | 3;
    hit: boolean; configMiss?: boolean; s1?: { out: number; sizeMiB?: number }; s2?: { in: number; out: number; sizeMiB?: number };
    flush?: boolean;
  }): this {
    const h = (x: number): string => '0x' + x.toString(16);
    const { tid, sid } = o;
    if (o.configMiss) {
      this.line(tid, `smmuv3_config_cache_miss Config cache MISS for sid=${h(sid)} (hits=0, misses=1, hit rate=0)`);
      this.line(tid, `smmuv3_find_ste sid=${h(sid)} features:0x1, sid_split:0x8`);
      this.line(tid, `smmuv3_get_ste STE addr: 0x7aa60200`);
      if (o.stage !== 2) {
        this.line(tid, `smmuv3_get_cd CD addr: 0x45361000`);
        this.line(tid, `smmuv3_decode_cd oas=44`);
        this.line(tid, `smmuv3_decode_cd_tt TT[0]:tsz:16 ttb:0x45360000 granule_sz:12 had:0`);
      }
    } else {
      this.line(tid, `smmuv3_config_cache_hit Config cache HIT for sid=${h(sid)} (hits=5, misses=1, hit rate=83)`);
    }
    if (o.hit) {
      this.hits++; this.lookupHits++;
      this.line(tid, `smmu_iotlb_lookup_hit IOTLB cache HIT asid=${o.asid} vmid=${o.vmid} addr=${h(o.iova)} hit=${this.hits} miss=${this.misses} hit rate=50`);
    } else {
      this.misses++; this.lookupMisses++;
      this.line(tid, `smmu_iotlb_lookup_miss IOTLB cache MISS asid=${o.asid} vmid=${o.vmid} addr=${h(o.iova)} hit=${this.hits} miss=${this.misses} hit rate=50`);
      let level = 3;
      const leaf = (stage: number, iova: number, addr: number, sizeMiB?: number): void => {
        for (let l = sizeMiB ? 1 : 0; l < (sizeMiB ? 2 : 3); l++) {
          this.line(tid, `smmu_get_pte baseaddr=0x50000000 index=0x1, pteaddr=0x50000008, pte=0x50001003`);
          this.line(tid, `smmu_ptw_level stage=${stage} level=${l} iova=${h(iova)} subpage_sz=0x1000 baseaddr=0x50000000 offset=1 => pte=0x50001003`);
        }
        if (sizeMiB) {
          level = 2;
          const base = addr - (addr % (sizeMiB * 0x100000));
          this.line(tid, `smmu_ptw_block_pte stage=${stage} level=2 base@=0x50001000 pte@=0x50001008 pte=0x${(base + 0x701).toString(16)} iova=${h(iova)} block address = ${h(base)} block size = ${sizeMiB} MiB`);
        } else {
          this.line(tid, `smmu_get_pte baseaddr=0x50002000 index=0x1, pteaddr=0x50002008, pte=0x${(addr - (addr % 4096) + 0xf47).toString(16)}`);
          this.line(tid, `smmu_ptw_level stage=${stage} level=3 iova=${h(iova)} subpage_sz=0x1000 baseaddr=0x50002000 offset=1 => pte=0x1`);
          this.line(tid, `smmu_ptw_page_pte stage=${stage} level=3 iova=${h(iova)} base@=0x50002000 pte@=0x50002008 pte=0x${(addr - (addr % 4096) + 0xf47).toString(16)} page address = ${h(addr - (addr % 4096))}`);
        }
      };
      if (o.s1) leaf(1, o.iova, o.s1.out, o.s1.sizeMiB);
      if (o.s2) leaf(2, o.s2.in, o.s2.out, o.s2.sizeMiB);
      if (o.flush) this.line(tid, 'smmu_iotlb_inv_all IOTLB invalidate all');
      const span = level === 2 ? 0x200000 : 0x1000;
      this.line(tid, `smmu_iotlb_insert IOTLB ++ asid=${o.asid} vmid=${o.vmid} addr=${h(o.iova - (o.iova % span))} tg=1 level=${level}`);
    }
    this.line(tid, `smmuv3_translate_success smmuv3-iommu-memory-region-8-1 sid=${h(sid)} iova=${h(o.iova)} translated=${h(o.out)} perm=0x3 stage=${o.stage}`);
    return this;
  }
}
