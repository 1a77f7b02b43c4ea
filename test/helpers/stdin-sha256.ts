// Child process for the stdin test: openUpdateInput('-') on the real process.stdin, hashed.
// Prints one JSON line: { name, size, bytes, sha256 }.
import { createHash } from 'node:crypto';
import { openUpdateInput } from '../../packages/diskimage/src/source/input.js';

const input = await openUpdateInput('-');
const h = createHash('sha256');
for await (const c of input.stream) h.update(c);
process.stdout.write(JSON.stringify({ name: input.name, size: input.size ?? null, bytes: input.stats.bytes, sha256: h.digest('hex') }) + '\n');
