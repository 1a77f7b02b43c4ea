import { encodeGptDisk, gptFromPlan, InputError, type Entropy, type GptTableSpec, type LayoutPlan } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';

export interface WriteTableOptions {
  /**
   * The device is known to read as zeros (a freshly created sparse file):
   * skip all-zero sectors so the file stays sparse. Never set this for a
   * block device or a reused file: stale bytes would break the entry CRCs.
   */
  assumeZeroed?: boolean;
}

/**
 * Write the protective MBR, primary GPT and backup GPT for `plan`. Touches
 * only those sectors. Returns the table written (GUIDs included).
 */
export async function writePartitionTable(dev: Device, plan: LayoutPlan, entropy: Entropy, opts: WriteTableOptions = {}): Promise<GptTableSpec> {
  if (dev.sectorSize !== plan.sectorSize) {
    throw new InputError(`device has ${dev.sectorSize}-byte sectors but the layout was planned for ${plan.sectorSize}`);
  }
  if (dev.size !== plan.totalSize) {
    // The backup GPT must sit in the device's last sector.
    throw new InputError(`device is ${dev.size} bytes but the layout was planned for ${plan.totalSize}`);
  }
  const spec = gptFromPlan(plan, entropy);
  const ss = plan.sectorSize;
  for (const w of encodeGptDisk(spec)) {
    if (!opts.assumeZeroed) {
      await dev.write(w.lba * ss, w.bytes);
      continue;
    }
    // Write only the runs of sectors that hold something.
    const n = w.bytes.length / ss;
    let runStart = -1;
    for (let i = 0; i <= n; i++) {
      const zero = i === n || isZero(w.bytes.subarray(i * ss, (i + 1) * ss));
      if (!zero && runStart < 0) runStart = i;
      if (zero && runStart >= 0) {
        await dev.write((w.lba + runStart) * ss, w.bytes.subarray(runStart * ss, i * ss));
        runStart = -1;
      }
    }
  }
  return spec;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
