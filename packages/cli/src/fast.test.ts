import test from 'ava';
import { fastStatusArgs } from './fast.js';

test('fast path: the status command lines a prompt uses', (t) => {
  t.deepEqual(fastStatusArgs(['status']), {});
  t.deepEqual(fastStatusArgs(['status', '/dev/sda']), { disk: '/dev/sda' });
  t.deepEqual(fastStatusArgs(['status', 'x.img', '--booted-label', 'psyopsOS-B']), { disk: 'x.img', bootedLabel: 'psyopsOS-B' });
  t.deepEqual(fastStatusArgs(['status', '--booted-label=psyopsOS-A', 'x.img', '--json', '-q']), { disk: 'x.img', bootedLabel: 'psyopsOS-A', json: true, quiet: true });
  t.deepEqual(fastStatusArgs(['status', '--quiet']), { quiet: true });
});

test('fast path: anything else goes to yargs (same errors and help)', (t) => {
  for (const argv of [
    [],
    ['--version'],
    ['show', 'x.img'],
    ['status', '--help'],
    ['status', '-h'],
    ['status', 'a.img', 'b.img'],
    ['status', '--json', '--json'],
    ['status', '-q', '--quiet'],
    ['status', '--booted-label'],
    ['status', '--booted-label', '--json'],
    ['status', '--booted-label', 'A', '--booted-label', 'B'],
    ['status', '--booted-label='],
    ['status', '--bootedLabel', 'A'],
    ['status', '--no-json'],
    ['status', '--json=false'],
    ['status', '--bogus'],
    ['status', '-'],
    ['status', '--'],
    ['status', '3'],
    ['status', ''],
    ['statu'],
    ['x', 'status'],
  ])
    t.is(fastStatusArgs(argv), undefined, argv.join(' '));
});
