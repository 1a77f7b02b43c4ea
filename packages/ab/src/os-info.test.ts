import test from 'ava';
import { diffPackages, parseApkInstalled, parseOsRelease } from './os-info.js';

test('parseOsRelease: quoted, single-quoted, escaped and bare values; comments and junk ignored', (t) => {
  const r = parseOsRelease('# comment\nNAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine \\"Linux\\" v3.20"\nX=\'single\'\nnot a line\n');
  t.deepEqual(r, { NAME: 'Alpine Linux', ID: 'alpine', VERSION_ID: '3.20.3', PRETTY_NAME: 'Alpine "Linux" v3.20', X: 'single' });
});

test('parseApkInstalled: records by blank lines, P/V/A, sorted by name; a record without P: is skipped', (t) => {
  const db = 'C:Q1a=\nP:zlib\nV:1.3.1-r0\nA:x86_64\nF:lib\nR:libz.so.1\n\nP:busybox\nV:1.36.1-r29\n\nV:9\n\nP:apk-tools\nV:2.14.4-r0\nA:x86_64';
  t.deepEqual(parseApkInstalled(db), [
    { name: 'apk-tools', version: '2.14.4-r0', arch: 'x86_64' },
    { name: 'busybox', version: '1.36.1-r29' },
    { name: 'zlib', version: '1.3.1-r0', arch: 'x86_64' },
  ]);
  t.deepEqual(parseApkInstalled(''), []);
});

test('diffPackages: added, removed, changed', (t) => {
  const a = [{ name: 'a', version: '1' }, { name: 'b', version: '1' }, { name: 'c', version: '1' }];
  const b = [{ name: 'b', version: '2' }, { name: 'c', version: '1' }, { name: 'd', version: '1' }];
  t.deepEqual(diffPackages(a, b), { added: [{ name: 'd', version: '1' }], removed: [{ name: 'a', version: '1' }], changed: [{ name: 'b', from: '1', to: '2' }] });
});
