/**
 * Issue 13, the curated public API: each package's entry ("." in its package.json, src/public.ts)
 * exports exactly the chosen list below (so it does not grow by accident: adding a name means
 * adding it here, on purpose), every one of them has TSDoc at its declaration, the values are
 * what the module really exports at run time, and the README's library examples import only
 * public names. Internals stay reachable for the workspace as "@diskimg/<pkg>/internal".
 *
 * (This file imports the packages by relative path on purpose: the workspace-wide switch to
 * "/internal" is a sed over '@diskimg/<pkg>' imports and must not rewrite it.)
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './helpers/cli.js';
import { readmeLibraryBlocks } from './helpers/readme.js';

const PUBLIC: Record<string, { values: string[]; types: string[] }> = {
  partitions: {
    values: [
      'CMDLINE_SLOT_PARAM', 'DiskimgError', 'ESP_PATHS', 'FormatError', 'InputError', 'NotFoundError', 'PARTITION_TYPES', 'PSYOPS_DEFAULTS', 'PSYOPS_NAMES',
      'SLOT_NAMES', 'SLOT_PATHS', 'SafetyError', 'UnsupportedFormatError', 'UsageError', 'buildTime', 'fmtBytes', 'makeEntropy', 'otherSlot', 'parseSize',
      'planLayout', 'readDiskTable', 'readDiskTableFromBytes', 'slotOfLabel', 'sourceDateEpoch', 'typeName',
    ],
    types: ['DiskTable', 'Entropy', 'GptPartition', 'LayoutOptions', 'LayoutPlan', 'PartitionSpec', 'PlannedPartition', 'SectorReader', 'SlotName'],
  },
  grubcfg: {
    values: ['DEFAULT_KERNEL_PARAMS', 'DEFAULT_TRIES', 'GRUBENV_PATH', 'GRUBENV_SIZE', 'MAX_TRIES', 'decodeGrubenv', 'encodeGrubenv', 'formatTimestamp', 'parseGrubCfg', 'predictBoot', 'renderCountingBlock', 'renderGrubCfg'],
    types: ['BootDecision', 'BootReason', 'CountingBlockOptions', 'GrubMenuEntry', 'GrubenvVars', 'ParsedGrubCfg', 'RenderGrubCfgOptions'],
  },
  diskimage: {
    values: [
      'FileDevice', 'MemoryDevice', 'Region', 'SquashfsReader', 'createExt4', 'createFat32', 'createImage', 'findFilesystemPartition', 'findPartition', 'isUrl',
      'openDisk', 'openFilesystem', 'openSquashfs', 'openTarFile', 'openUpdateInput', 'parseFsSpec', 'probeFilesystem', 'probePartition', 'psyopsLayout',
      'readDirTree', 'readSmallInput', 'readTarTree', 'resolveNested', 'summarizeDisk', 'withFilesystem', 'xzDecompress',
    ],
    types: [
      'CreateExt4Options', 'CreateExt4Summary', 'CreateImageOptions', 'CreateSummary', 'Device', 'Disk', 'DiskPartition', 'DiskSummary', 'EntryType', 'ExtraFile',
      'FsEntry', 'FsEntryType', 'FsProbe', 'FsReadOptions', 'FsReader', 'FsType', 'OpenInputOptions', 'OpenSquashfsOptions', 'PartitionSummary', 'PsyopsLayoutOptions',
      'ReadDirOptions', 'SquashfsEntry', 'SquashfsInode', 'SquashfsStat', 'TreeEntry', 'UpdateInput', 'WriteHint',
    ],
  },
  ab: {
    values: [
      'CHECK_EXIT', 'MinisignVerifier', 'armTrial', 'bootedLabel', 'buildImage', 'checkRepo', 'decodePublicKey', 'decodeSignature', 'describeDifference', 'diffDisks',
      'encodeSignature', 'findBootDisk', 'formatTrustedComment', 'inferBooted', 'inspectDisk', 'keyIdHex', 'markBad', 'markGood', 'parseTrustedComment', 'publish', 'readBootState',
      'readPublicKeyFile', 'readSecretKeyFile', 'readSignatureFile', 'resolveRelease', 'rollback', 'selfUpdate', 'setDefault', 'signFile', 'slotStatus', 'updateEsp',
      'updateFromRepo', 'updateSlot', 'verifyFile', 'writeKeyPair',
    ],
    types: [
      'BootDiskInfo', 'BootState', 'BootStateChange', 'BootStatus', 'BootedArg', 'BootedSource', 'BuildImageOptions', 'BuildSummary', 'CheckOptions', 'CheckResult', 'CheckStatus', 'DiffOptions', 'DiskDifference',
      'DiskInspection', 'EspInfo', 'EspUpdateOptions', 'EspUpdateResult', 'FileInput', 'GrubCfgInfo', 'InspectedPartition', 'KeygenResult', 'PublicKey', 'PublishOptions',
      'PublishResult', 'Release', 'ReleaseKind', 'RepoUpdateOptions', 'RepoUpdateResult', 'ResolveOptions', 'SecretKey', 'SelfUpdateOptions', 'SelfUpdateResult',
      'SignOptions', 'Signature', 'SignatureInfo', 'SlotInfo', 'SlotSummary', 'UpdateOptions', 'UpdateResult', 'VerifyNames', 'VerifyResult',
    ],
  },
};
const PACKAGES = Object.keys(PUBLIC);
const entry = (pkg: string) => join(repoRoot, 'packages', pkg, 'src', 'public.ts');

// One program over the four entries: names, values or types, and documentation.
const program = ts.createProgram(PACKAGES.map(entry), {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  customConditions: ['source'],
  strict: true,
  noEmit: true,
  skipLibCheck: true,
});
const checker = program.getTypeChecker();
function exportsOf(pkg: string): { name: string; value: boolean; doc: string; where: string }[] {
  const sf = program.getSourceFile(entry(pkg))!;
  return checker.getExportsOfModule(checker.getSymbolAtLocation(sf)!).map((s) => {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    const decl = target.declarations?.[0];
    const where = decl ? `${decl.getSourceFile().fileName.slice(repoRoot.length + 1)}:${decl.getSourceFile().getLineAndCharacterOfPosition(decl.getStart()).line + 1}` : '?';
    return { name: s.name, value: (target.flags & ts.SymbolFlags.Value) !== 0, doc: ts.displayPartsToString(target.getDocumentationComment(checker)).trim(), where };
  });
}

for (const pkg of PACKAGES) {
  test(`@diskimg/${pkg}: the public entry exports exactly the chosen list, each with TSDoc`, async (t) => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'packages', pkg, 'package.json'), 'utf8'));
    t.deepEqual(manifest.exports['.'], { source: './src/public.ts', types: './dist/public.d.ts', default: './dist/public.js' });
    t.deepEqual(manifest.exports['./internal'], { source: './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' });
    const got = exportsOf(pkg);
    t.deepEqual(got.filter((e) => e.value).map((e) => e.name).sort(), [...PUBLIC[pkg]!.values].sort(), 'values: change the list here only on purpose');
    t.deepEqual(got.filter((e) => !e.value).map((e) => e.name).sort(), [...PUBLIC[pkg]!.types].sort(), 'types: change the list here only on purpose');
    t.deepEqual(got.filter((e) => e.doc === '').map((e) => `${e.name} (${e.where})`), [], 'public exports without TSDoc at their declaration');
    // At run time too (the module really exports these values, and nothing more).
    const mod = (await import(entry(pkg))) as Record<string, unknown>;
    t.deepEqual(Object.keys(mod).sort(), [...PUBLIC[pkg]!.values].sort());
  });
}

test('the README library examples import only public names', (t) => {
  const blocks = readmeLibraryBlocks();
  t.true(blocks.length > 0);
  let seen = 0;
  for (const code of blocks) {
    for (const m of code.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(@diskimg\/[^']+)'/g)) {
      const spec = m[3]!;
      const pkg = /^@diskimg\/([a-z]+)$/.exec(spec)?.[1];
      t.truthy(pkg && PUBLIC[pkg], `${spec}: examples import package entries only (not /internal)`);
      if (!pkg || !PUBLIC[pkg]) continue;
      for (const raw of m[2]!.split(',')) {
        const name = raw.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!;
        if (!name) continue;
        seen++;
        t.true(PUBLIC[pkg]!.values.includes(name) || PUBLIC[pkg]!.types.includes(name), `${name} from ${spec} is not public`);
      }
    }
    t.notRegex(code, /import\s+\*\s+as|from\s+'\.\.?\//, 'examples import named exports of the packages');
  }
  t.true(seen >= 8, `only ${seen} names imported by the examples`);
});
