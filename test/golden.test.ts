// Golden images (issue 15): every image kind built from fixtures/golden/ with SOURCE_DATE_EPOCH and
// --seed fixed must have exactly the sha256 digests recorded in fixtures/golden/manifest.json (whole
// image, GPT areas, each partition). On a mismatch the test names the digests that differ and, when
// the expected image is in .cache/golden/ (built on this machine by an earlier passing run or by
// `pnpm golden:update`), prints `diskimg diff` of expected vs actual. A deliberate change of bytes:
// `pnpm golden:update`, and commit the manifest with the diff it prints.
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describeDifference, diffDisks, summarizeDifferences } from '../packages/ab/src/index.js';
import {
  buildGoldenImages,
  CACHE_DIR,
  cachedImage,
  cacheImage,
  digestImage,
  digestMismatches,
  GOLDEN_KINDS,
  makeGoldenInputs,
  readManifest,
  type GoldenDigests,
} from './helpers/golden.js';

const manifest = readManifest();
let work = '';
let built: Record<string, string> = {};
let buildError: unknown;

test.before(async () => {
  mkdirSync(CACHE_DIR, { recursive: true });
  work = mkdtempSync(join(CACHE_DIR, 'test-')); // on the cache's filesystem: a good image is moved there, not copied
  try {
    built = await buildGoldenImages(join(work, 'images'), await makeGoldenInputs(join(work, 'inputs')));
  } catch (e) {
    buildError = e;
  }
});
test.after.always(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the manifest pins every kind', (t) => {
  t.truthy(manifest, 'fixtures/golden/manifest.json is missing: run pnpm golden:update');
  t.deepEqual(Object.keys(manifest!.kinds), GOLDEN_KINDS.map((k) => k.name));
  for (const [name, k] of Object.entries(manifest!.kinds)) {
    t.regex(k.image, /^[0-9a-f]{64}$/, name);
    t.regex(k.gpt, /^[0-9a-f]{64}$/, name);
    // layout-only has partitions too (zeros): every kind pins all four.
    t.deepEqual(Object.keys(k.partitions), ['PSYOPSOSEFI', 'psyops-secret', 'psyopsOS-A', 'psyopsOS-B'], name);
  }
});

for (const kind of GOLDEN_KINDS) {
  test.serial(`golden ${kind.name}: ${kind.what}`, async (t) => {
    if (buildError) throw buildError;
    const expected: GoldenDigests | undefined = manifest?.kinds[kind.name];
    if (!expected) return t.fail(`${kind.name}: not in fixtures/golden/manifest.json (run pnpm golden:update)`);
    const img = built[kind.name]!;
    const actual = await digestImage(img);
    const bad = digestMismatches(expected, actual);
    if (bad.length === 0) {
      // Known good: keep it so a later mismatch can be explained structure by structure.
      if (!existsSync(cachedImage(actual.image))) cacheImage(img, actual.image);
      t.pass();
      return;
    }
    t.log(`${kind.name}: digests differ: ${bad.join(', ')}`);
    t.log(`  expected image ${expected.image}`);
    t.log(`  actual   image ${actual.image}`);
    for (const n of Object.keys(actual.partitions)) if (expected.partitions[n] !== actual.partitions[n]) t.log(`  ${n}: ${expected.partitions[n]} -> ${actual.partitions[n]}`);
    const old = cachedImage(expected.image);
    if (existsSync(old)) {
      const diffs = await diffDisks(old, img);
      t.log(`diskimg diff expected actual (${summarizeDifferences(diffs).verdict}):`);
      for (const d of diffs.slice(0, 200)) t.log(`  ${d.group}: ${describeDifference(d)}`);
      if (diffs.length > 200) t.log(`  … ${diffs.length - 200} more`);
    } else {
      t.log(
        `  the expected image is not cached (${old}): run this test once on the last commit whose golden tests pass, ` +
          'then again here, to see diskimg diff of expected vs actual',
      );
    }
    t.log('  a deliberate format change? run pnpm golden:update and commit fixtures/golden/manifest.json with the diff it prints');
    t.fail(`${kind.name}: image bytes differ from fixtures/golden/manifest.json (${bad.join(', ')})`);
  });
}
