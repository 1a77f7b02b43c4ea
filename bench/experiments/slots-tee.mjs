/**
 * Experiment (issue 5 profiling; not run by `pnpm bench`): build slots A and B from ONE pass
 * over the OS tar by teeing the TreeEntry stream into two concurrent createExt4 calls, against
 * two passes (what packages/ab/src/build.ts does today). Same bytes either way (checked with cmp).
 * Run after pnpm build:  node bench/experiments/slots-tee.mjs /tmp/t.img tee|twopass
 * Measured 2026-11-29 21:10 UTC, load 2.5: twopass 2.17–2.46 s wall, 1.8–2.1 s CPU;
 * tee 1.69–1.79 s wall, 1.4–1.5 s CPU (peak RSS ~106 MiB both).
 */
const dm = await import(new URL('../../packages/diskimage/dist/index.js', import.meta.url).href);
const { makeEntropy } = await import(new URL('../../packages/partitions/dist/index.js', import.meta.url).href);
const { FileDevice, Region, SparseWriteDevice, createExt4, openTarFile } = dm;
const MiB = 2 ** 20, SLOT = 1536 * MiB;
const [out, mode] = process.argv.slice(2);
// The workload must exist: node --import=tsx bench/workload.ts (or OS_TAR=path).
const OS = process.env.OS_TAR ?? new URL('../out/workload-v1/os.tar', import.meta.url).pathname;

function tee2(src) {
  const it = src[Symbol.asyncIterator]();
  const eq = [[], []]; let edone = false, epull = null, lastBody = null;
  const pullChunk = (b) => b.pull ??= (async () => { const r = await b.it.next(); if (r.done) b.done = true; else { b.q[0].push(r.value); b.q[1].push(r.value); } b.pull = null; })();
  const drain = async (b) => { while (!b.done) await pullChunk(b); };
  async function* bodyView(b, i) { for (;;) { if (b.q[i].length) { yield b.q[i].shift(); continue; } if (b.done) return; await pullChunk(b); } }
  const pullEntry = () => epull ??= (async () => {
    if (lastBody) await drain(lastBody);
    const r = await it.next();
    if (r.done) edone = true;
    else {
      const e = r.value;
      if (e.body) { const b = { it: e.body[Symbol.asyncIterator](), q: [[], []], done: false, pull: null }; lastBody = b; eq[0].push({ ...e, body: bodyView(b, 0) }); eq[1].push({ ...e, body: bodyView(b, 1) }); }
      else { lastBody = null; eq[0].push(e); eq[1].push(e); }
    }
    epull = null;
  })();
  async function* view(i) { for (;;) { if (eq[i].length) { yield eq[i].shift(); continue; } if (edone) return; await pullEntry(); } }
  return [view(0), view(1)];
}

const fdev = await FileDevice.create(out, 2 * SLOT);
const dev = new SparseWriteDevice(fdev);
const opts = (label) => ({ label, entropy: makeEntropy('bench-' + label), now: 1795910400, extraFiles: [{ path: label, data: label }], regionIsZeroed: true });
const A = new Region(dev, 0, SLOT, 'A'), B = new Region(dev, SLOT, SLOT, 'B');
const t0 = performance.now();
if (mode === 'tee') { const [a, b] = tee2(openTarFile(OS)); await Promise.all([createExt4(A, a, opts('psyopsOS-A')), createExt4(B, b, opts('psyopsOS-B'))]); }
else { await createExt4(A, openTarFile(OS), opts('psyopsOS-A')); await createExt4(B, openTarFile(OS), opts('psyopsOS-B')); }
await fdev.flush(); await fdev.close();
console.error(`${mode}: ${(performance.now() - t0).toFixed(0)} ms in-process`);
