import test from 'ava';
import { fastStatusArgs, fastTopHelp } from './fast.js';

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

test('fast top-level help: only where yargs would print the static text', (t) => {
  const en = { LC_ALL: 'C' };
  t.true(fastTopHelp(['--help'], en, undefined), 'not a terminal: yargs wraps at 100');
  t.true(fastTopHelp(['help'], en, 100));
  t.true(fastTopHelp(['--help'], en, 200));
  t.true(fastTopHelp(['--help'], {}, undefined), 'no locale: yargs uses en_US');
  t.true(fastTopHelp(['--help'], { LANG: 'en_GB.UTF-8' }, undefined));
  t.true(fastTopHelp(['--help'], { LC_ALL: 'POSIX' }, undefined));
  t.true(fastTopHelp(['--help'], { LANG: 'C.UTF-8', SOURCE_DATE_EPOCH: '' }, undefined));
  t.false(fastTopHelp(['--help'], en, 99), 'narrower terminal: yargs wraps otherwise');
  t.false(fastTopHelp(['--help'], en, 0));
  t.false(fastTopHelp(['--help'], { LANG: 'de_DE.UTF-8' }, undefined), 'yargs translates');
  t.false(fastTopHelp(['--help'], { LC_ALL: 'fr', LANG: 'en_US' }, undefined), 'LC_ALL first');
  t.false(fastTopHelp(['--help'], { LC_MESSAGES: 'pirate', LANG: 'C' }, undefined));
  t.false(fastTopHelp(['--help'], { ...en, SOURCE_DATE_EPOCH: 'x' }, undefined), 'yargs path checks it first');
  for (const argv of [[], ['-h'], ['--help', '--'], ['--help', '--json'], ['help', 'create'], ['create', '--help'], ['--version']])
    t.false(fastTopHelp(argv, en, undefined), argv.join(' '));
});

test('small-heap V8 flags: create, update, update-esp from files; not over HTTP(S); not other commands', async (t) => {
  const { smallHeapFor } = await import('./main.js');
  t.true(smallHeapFor(['create', 'x.img', '--os-tar', 'os.tar']));
  t.true(smallHeapFor(['update', '/dev/sda', '--slot', 'inactive', '--os-tar', '-']));
  t.true(smallHeapFor(['update', '/dev/sda', '--repo', '/srv/repo', '--pubkey', 'k.pub']));
  t.true(smallHeapFor(['update-esp', 'x.img', '--esp-tar', 'esp.tar']));
  t.false(smallHeapFor(['update', '/dev/sda', '--os-tar', 'https://example.org/os.tar']));
  t.false(smallHeapFor(['update', '/dev/sda', '--repo', 'HTTP://10.0.0.1/repo']));
  t.false(smallHeapFor(['status']));
  t.false(smallHeapFor(['show', 'x.img', '--json']));
});
