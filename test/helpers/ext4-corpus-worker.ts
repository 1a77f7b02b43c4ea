/**
 * Child process for test/ext4-corpus.test.ts: opens one image at a time with
 * our reader and walks it (comparing with a debugfs rdump when given), so the
 * parent can kill it on a hang or out-of-memory and keep going.
 */
import { FileDevice } from '../../packages/diskimage/src/device/file.js';
import { openExt4 } from '../../packages/diskimage/src/ext4/reader.js';
import { DiskimgError } from '../../packages/partitions/src/errors.js';
import { walkExt4 } from './ext4-walk.js';

export interface CorpusJob {
  img: string;
  ref?: string;
  byteBudget: number;
  /** Stop a best-effort walk after this many directory entries. */
  entryBudget?: number;
}
export interface CorpusResult {
  outcome: 'read' | 'refused' | 'typed-error' | 'crash';
  message?: string;
  dirs?: number;
  files?: number;
  symlinks?: number;
  bytes?: number;
  truncated?: boolean;
  mismatches?: string[];
}

async function run(job: CorpusJob): Promise<CorpusResult> {
  const dev = await FileDevice.open(job.img);
  try {
    const fs = await openExt4(dev, { name: job.img });
    const w = await walkExt4(fs, job.ref, { byteBudget: job.byteBudget, entryBudget: job.entryBudget });
    return { outcome: 'read', ...w };
  } catch (e) {
    if (e instanceof DiskimgError) {
      return { outcome: /unsupported feature/.test(e.message) ? 'refused' : 'typed-error', message: e.message };
    }
    return { outcome: 'crash', message: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e) };
  } finally {
    await dev.close();
  }
}

process.on('message', (job: CorpusJob) => {
  run(job).then(
    (r) => process.send!(r),
    (e) => process.send!({ outcome: 'crash', message: String(e) } satisfies CorpusResult),
  );
});
