import test from 'ava';
import { createProgress, fmtDuration, progressLine, progressWanted } from './progress.js';

function fakeTty(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, columns: 200, write: (s: string) => (out.push(s), true) } };
}

test('the line has done, total, percentage, rate and ETA; an estimate stays below 100% until finish', (t) => {
  t.is(progressLine('create', 50 * 2 ** 20, 200 * 2 ** 20, 2000), 'create: 50 MiB of 200 MiB (25%), 25 MiB/s, ETA 0:06');
  t.regex(progressLine('update', 300, 200, 1000), /\(99%\)/);
  t.is(progressLine('sign', 1024, undefined, 100), 'sign: 1 KiB');
  t.is(fmtDuration(3725), '1:02:05');
});

test('drawn only on a terminal and without --quiet/--json; throttled; finish keeps a line', (t) => {
  let now = 0;
  const tty = fakeTty(true);
  const p = createProgress({ label: 'x', total: 100, stream: tty.stream, now: () => now });
  p.update(10);
  now = 50;
  p.update(20); // throttled
  now = 1000;
  p.update(50);
  p.finish();
  t.is(tty.out.filter((s) => s.startsWith('\r')).length, 3);
  t.regex(tty.out.join(''), /x: 50 B of 100 B \(50%\), 50 B\/s, ETA 0:01/);
  t.true(tty.out.at(-1) === '\n');
  for (const [isTTY, quiet] of [[false, false], [true, true]] as const) {
    const f = fakeTty(isTTY);
    const q = createProgress({ label: 'x', total: 10, stream: f.stream, quiet });
    q.status('unlocking');
    q.update(5);
    q.finish();
    t.deepEqual(f.out, []);
  }
  t.false(progressWanted({ json: true }, { isTTY: true }));
  t.false(progressWanted({ quiet: true }, { isTTY: true }));
  t.false(progressWanted({}, { isTTY: false }));
  t.true(progressWanted({}, { isTTY: true }));
});
