/**
 * `pnpm golden:update [KIND ...]`: rebuild the golden images from fixtures/golden/, print for
 * each kind whose bytes changed the `diskimg diff` of the old image against the new one (when
 * the old one is in .cache/golden/, i.e. was built on this machine by a passing golden test or
 * an earlier update), and rewrite fixtures/golden/manifest.json. Run it only when a change of
 * bytes is deliberate (a format change on purpose), and paste the diff into the commit message.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeDifference, diffDisks, summarizeDifferences } from '../packages/ab/src/index.js';
import {
  buildGoldenImages,
  CACHE_DIR,
  cachedImage,
  cacheImage,
  commandLines,
  digestImage,
  digestMismatches,
  GOLDEN_KINDS,
  makeGoldenInputs,
  MANIFEST_PATH,
  pruneCache,
  readManifest,
  SEED,
  SOURCE_DATE_EPOCH,
  type Manifest,
} from '../test/helpers/golden.js';

async function main(): Promise<number> {
  const only = process.argv.slice(2);
  for (const k of only) if (!GOLDEN_KINDS.some((g) => g.name === k)) throw new Error(`unknown kind ${k} (kinds: ${GOLDEN_KINDS.map((g) => g.name).join(', ')})`);
  const old = readManifest();
  mkdirSync(CACHE_DIR, { recursive: true });
  const work = mkdtempSync(join(CACHE_DIR, 'update-'));
  try {
    const inputs = await makeGoldenInputs(join(work, 'inputs'));
    const built = await buildGoldenImages(join(work, 'images'), inputs, only.length ? only : undefined);
    const next: Manifest = {
      comment:
        'Expected sha256 digests of the golden images (issue 15), built by test/helpers/golden.ts from fixtures/golden/ ' +
        'with SOURCE_DATE_EPOCH and --seed fixed; checked by test/golden.test.ts. Regenerate only for a deliberate format ' +
        'change: pnpm golden:update (prints the diff of old vs new).',
      sourceDateEpoch: SOURCE_DATE_EPOCH,
      seed: SEED,
      kinds: { ...(old?.kinds ?? {}) },
    };
    let changed = 0;
    for (const k of GOLDEN_KINDS) {
      const img = built[k.name];
      if (!img || (only.length && !only.includes(k.name))) continue;
      const d = await digestImage(img);
      const before = old?.kinds[k.name];
      next.kinds[k.name] = { what: k.what, commands: commandLines(k, inputs), ...d };
      const bad = before ? digestMismatches(before, d) : ['new kind'];
      if (bad.length === 0) {
        process.stdout.write(`${k.name}: unchanged\n`);
      } else {
        changed++;
        process.stdout.write(`${k.name}: changed (${bad.join(', ')})\n`);
        if (before && existsSync(cachedImage(before.image))) {
          const diffs = await diffDisks(cachedImage(before.image), img);
          for (const x of diffs) process.stdout.write(`  ${x.group}: ${describeDifference(x)}\n`);
          process.stdout.write(`  ${summarizeDifferences(diffs).verdict}\n`);
        } else if (before) {
          process.stdout.write('  (the old image is not in .cache/golden: run the golden test on the previous commit first to see the diff)\n');
        }
      }
      if (!existsSync(cachedImage(d.image))) cacheImage(img, d.image);
    }
    // Keep the file's kind order that of GOLDEN_KINDS.
    next.kinds = Object.fromEntries(GOLDEN_KINDS.filter((k) => next.kinds[k.name]).map((k) => [k.name, next.kinds[k.name]!]));
    writeFileSync(MANIFEST_PATH, `${JSON.stringify(next, null, 2)}\n`);
    pruneCache(next);
    process.stdout.write(`${MANIFEST_PATH}: ${changed} ${changed === 1 ? 'kind' : 'kinds'} changed\n`);
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (c) => process.exit(c),
  (e) => {
    process.stderr.write(`golden-update: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
