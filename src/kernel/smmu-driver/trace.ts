/**
 * A recorder of the commands an SMMU consumed, as short readable lines — for tests, `explain`-style
 * debugging and docs. It chains to the listener already installed on the Smmu (metrics, oracle),
 * so it can be attached and detached at any time. Not on any hot path.
 *
 * No Node or DOM imports.
 */
import {
  OP, cmdAddrPage, cmdAsid, cmdAtcSize, cmdCs, cmdIpaPage, cmdLeaf, cmdMsh, cmdMsiAddr, cmdMsiAttr, cmdNum,
  cmdRange, cmdScale, cmdSid, cmdSsid, cmdSsv, cmdTg, cmdTtl, cmdVmid, commandName,
} from '../../arch/commands.js';
import type { Smmu, SmmuListener } from '../../hw/smmu/smmu.js';

/** One consumed command, decoded to the fields the driver sets. */
export interface RecordedCommand {
  op: number;
  /** Name without the CMD_ prefix (CFGI_ALL for CFGI_STE_RANGE with Range 31). */
  name: string;
  sid: number;
  ssid: number;
  ssv: number;
  vmid: number;
  asid: number;
  /** Address field as a 4 KiB page number (VA / IPA / ATC address). */
  page: number;
  leaf: number;
  num: number;
  scale: number;
  ttl: number;
  tg: number;
  /** CMD_ATC_INV Size. */
  size: number;
  /** CMD_SYNC */
  cs: number;
  msh: number;
  msiAttr: number;
  msiAddr: number;
  /** Compact text, e.g. `TLBI_NH_VA asid=1 page=0x10 num=2 scale=0 ttl=3 tg=1 leaf=1`. */
  text: string;
}

export function describeCommand(w: Uint32Array, off: number): RecordedCommand {
  const op = w[off] & 0xff;
  const name = commandName(w, off).replace(/^CMD_/, '');
  const r: RecordedCommand = {
    op, name, sid: 0, ssid: 0, ssv: 0, vmid: 0, asid: 0, page: 0, leaf: 0, num: 0, scale: 0, ttl: 0, tg: 0,
    size: 0, cs: 0, msh: 0, msiAttr: 0, msiAddr: 0, text: name,
  };
  const hex = (n: number): string => '0x' + n.toString(16);
  const range = (): string => (r.tg !== 0 ? ` num=${r.num} scale=${r.scale} ttl=${r.ttl} tg=${r.tg}` : '') + ` leaf=${r.leaf}`;
  switch (op) {
    case OP.CMD_CFGI_STE:
    case OP.CMD_CFGI_CD:
    case OP.CMD_CFGI_CD_ALL:
    case OP.CMD_PREFETCH_CONFIG:
      r.sid = cmdSid(w, off); r.ssid = cmdSsid(w, off); r.leaf = cmdLeaf(w, off);
      r.text = `${name} sid=${r.sid}` + (op === OP.CMD_CFGI_CD ? ` ssid=${r.ssid}` : '') +
        (op === OP.CMD_CFGI_STE || op === OP.CMD_CFGI_CD ? ` leaf=${r.leaf}` : '');
      break;
    case OP.CMD_CFGI_STE_RANGE:
      r.sid = cmdSid(w, off);
      r.text = cmdRange(w, off) === 31 ? name : `${name} sid=${r.sid} range=${cmdRange(w, off)}`;
      break;
    case OP.CMD_TLBI_NH_ALL:
    case OP.CMD_TLBI_S12_VMALL:
      r.vmid = cmdVmid(w, off);
      r.text = `${name} vmid=${r.vmid}`;
      break;
    case OP.CMD_TLBI_NH_ASID:
      r.vmid = cmdVmid(w, off); r.asid = cmdAsid(w, off);
      r.text = `${name} vmid=${r.vmid} asid=${r.asid}`;
      break;
    case OP.CMD_TLBI_EL2_ASID:
      r.asid = cmdAsid(w, off);
      r.text = `${name} asid=${r.asid}`;
      break;
    case OP.CMD_TLBI_NH_VA:
    case OP.CMD_TLBI_EL2_VA:
    case OP.CMD_TLBI_S2_IPA:
      r.vmid = cmdVmid(w, off); r.asid = op === OP.CMD_TLBI_S2_IPA ? 0 : cmdAsid(w, off);
      r.page = op === OP.CMD_TLBI_S2_IPA ? cmdIpaPage(w, off) : cmdAddrPage(w, off);
      r.leaf = cmdLeaf(w, off); r.num = cmdNum(w, off); r.scale = cmdScale(w, off);
      r.ttl = cmdTtl(w, off); r.tg = cmdTg(w, off);
      r.text = `${name}` + (op === OP.CMD_TLBI_EL2_VA ? '' : ` vmid=${r.vmid}`) +
        (op === OP.CMD_TLBI_S2_IPA ? '' : ` asid=${r.asid}`) + ` page=${hex(r.page)}` + range();
      break;
    case OP.CMD_ATC_INV:
      r.sid = cmdSid(w, off); r.ssv = cmdSsv(w, off); r.ssid = cmdSsid(w, off);
      r.size = cmdAtcSize(w, off); r.page = cmdAddrPage(w, off);
      r.text = `${name} sid=${r.sid}` + (r.ssv ? ` ssid=${r.ssid}` : '') + ` page=${hex(r.page)} size=${r.size}`;
      break;
    case OP.CMD_SYNC:
      r.cs = cmdCs(w, off); r.msh = cmdMsh(w, off); r.msiAttr = cmdMsiAttr(w, off);
      r.msiAddr = Number(cmdMsiAddr(w, off));
      r.text = name;
      break;
    default:
      break;
  }
  return r;
}

/** Records every command the SMMU consumes until `stop()`. */
export class CommandRecorder {
  readonly log: RecordedCommand[] = [];
  private readonly prev: SmmuListener | null;
  private readonly mine: SmmuListener;

  constructor(readonly smmu: Smmu) {
    this.prev = smmu.listener;
    const prev = this.prev;
    const log = this.log;
    // Forward every other callback to the previous listener, with it as `this`.
    this.mine = {
      onRemove: (a, b, c, d, e) => prev?.onRemove?.(a, b, c, d, e),
      onHit: (a, b, c, d, e, f) => prev?.onHit?.(a, b, c, d, e, f),
      onFill: (a, b, c, d, e) => prev?.onFill?.(a, b, c, d, e),
      onSync: (a) => prev?.onSync?.(a),
      onCommandError: (a, b, c, d, e) => prev?.onCommandError?.(a, b, c, d, e),
      onBroadcast: (a, b, c, d) => prev?.onBroadcast?.(a, b, c, d),
      onDvmSync: (a) => prev?.onDvmSync?.(a),
      onCommand: (s, op, ring, off) => {
        log.push(describeCommand(ring, off));
        prev?.onCommand?.(s, op, ring, off);
      },
    };
    smmu.listener = this.mine;
  }

  /** Command texts (optionally only the given names). */
  texts(): string[] { return this.log.map((c) => c.text); }
  names(): string[] { return this.log.map((c) => c.name); }
  clear(): void { this.log.length = 0; }

  stop(): void {
    if (this.smmu.listener === this.mine) this.smmu.listener = this.prev;
  }
}
