/**
 * Child process for test/xz.test.ts's fuzz cases: decodes one (damaged) .xz stream per message
 * and answers with the outcome, so the parent can kill it when a case hangs (xzDecompress is
 * synchronous: a hang could not be interrupted on the test's own thread).
 */
import { createHash } from 'node:crypto';
import { xzDecompress } from '../../packages/diskimage/src/compress/xz.js';
import { DiskimgError } from '../../packages/partitions/src/errors.js';

export interface FuzzJob {
  id: number;
  input: Uint8Array;
  maxOutput: number;
}
export interface FuzzResult {
  id: number;
  /** decoded: the sha256 of the output; typed: a DiskimgError; crash: anything else. */
  outcome: 'decoded' | 'typed' | 'crash';
  sha256?: string;
  name?: string;
  message?: string;
}

process.on('message', (job: FuzzJob) => {
  let r: FuzzResult;
  try {
    const out = xzDecompress(job.input, job.maxOutput);
    r = { id: job.id, outcome: 'decoded', sha256: createHash('sha256').update(out).digest('hex') };
  } catch (e) {
    const err = e as Error;
    r = { id: job.id, outcome: e instanceof DiskimgError ? 'typed' : 'crash', name: err?.name, message: String(err?.stack ?? err) };
  }
  process.send!(r);
});
