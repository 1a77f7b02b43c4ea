import type { Device, WriteHint } from '../device/device.js';

/**
 * Write-behind for the writer's data path. The allocator hands out blocks in
 * order, so consecutive small files (and their zero padding) land next to
 * each other on disk: they are gathered into 1 MiB writes instead of two
 * tiny writes per file. Large chunks go straight to the device. A few writes
 * stay in flight while the caller parses the next input, and every pending
 * write is awaited before `drain` returns.
 */
const BUF = 1 << 20;
const DIRECT = 64 * 1024;
const MAX_INFLIGHT = 3;
const NO_ZERO: WriteHint = { noZeroPieces: true };

export class WriteBehind {
  private readonly bufs = [Buffer.allocUnsafe(BUF), Buffer.allocUnsafe(BUF)];
  /** The write (if any) still reading each buffer. */
  private readonly busy: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  private cur = 0;
  private fill = 0;
  /** Device offset of bufs[cur][0]. */
  private start = 0;
  private readonly inflight: Promise<void>[] = [];
  /** Every piece gathered in bufs[cur] came with `noZeroPieces` (then the gathered write carries it too). */
  private noZero = true;

  constructor(private readonly dev: Device) {}

  /** Queue `data` for `offset`. `data` must not change until `drain` (large chunks are written from it directly). */
  async write(offset: number, data: Buffer, hint?: WriteHint): Promise<void> {
    if (data.length >= DIRECT) {
      this.inflight.push(handled(this.dev.write(offset, data, hint)));
      while (this.inflight.length > MAX_INFLIGHT) await this.inflight.shift();
      return;
    }
    if (this.fill && (offset !== this.start + this.fill || this.fill + data.length > BUF)) await this.flush();
    if (!this.fill) this.start = offset;
    data.copy(this.bufs[this.cur]!, this.fill);
    this.fill += data.length;
    this.noZero &&= !!hint?.noZeroPieces;
  }

  private async flush(): Promise<void> {
    if (!this.fill) return;
    const i = this.cur;
    const p = handled(this.dev.write(this.start, this.bufs[i]!.subarray(0, this.fill), this.noZero ? NO_ZERO : undefined));
    this.noZero = true;
    this.busy[i] = p;
    this.inflight.push(p);
    this.cur ^= 1;
    this.fill = 0;
    await this.busy[this.cur]; // the other buffer must be written out before it is refilled
    while (this.inflight.length > MAX_INFLIGHT) await this.inflight.shift();
  }

  /** Write out everything queued and wait for all writes (errors surface here). */
  async drain(): Promise<void> {
    await this.flush();
    await Promise.all(this.inflight.splice(0));
    await Promise.all(this.busy);
  }
}

/** Mark a promise handled now (it is awaited later), so a failed write is not an unhandled rejection meanwhile. */
function handled(p: Promise<void>): Promise<void> {
  p.catch(() => {});
  return p;
}
