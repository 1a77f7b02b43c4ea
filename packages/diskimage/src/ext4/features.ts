/**
 * ext4 feature flags (s_feature_compat / _incompat / _ro_compat), names as
 * e2fsprogs prints them (dumpe2fs "Filesystem features").
 */
export const COMPAT = {
  dir_prealloc: 0x1,
  imagic_inodes: 0x2,
  has_journal: 0x4,
  ext_attr: 0x8,
  resize_inode: 0x10,
  dir_index: 0x20,
  lazy_bg: 0x40,
  snapshot_bitmap: 0x100,
  sparse_super2: 0x200,
  fast_commit: 0x400,
  stable_inodes: 0x800,
  orphan_file: 0x1000,
} as const;

export const INCOMPAT = {
  compression: 0x1,
  filetype: 0x2,
  needs_recovery: 0x4,
  journal_dev: 0x8,
  meta_bg: 0x10,
  extent: 0x40,
  '64bit': 0x80,
  mmp: 0x100,
  flex_bg: 0x200,
  ea_inode: 0x400,
  dirdata: 0x1000,
  metadata_csum_seed: 0x2000,
  large_dir: 0x4000,
  inline_data: 0x8000,
  encrypt: 0x10000,
  casefold: 0x20000,
} as const;

export const RO_COMPAT = {
  sparse_super: 0x1,
  large_file: 0x2,
  btree_dir: 0x4,
  huge_file: 0x8,
  uninit_bg: 0x10,
  dir_nlink: 0x20,
  extra_isize: 0x40,
  snapshot: 0x80,
  quota: 0x100,
  bigalloc: 0x200,
  metadata_csum: 0x400,
  replica: 0x800,
  read_only: 0x1000,
  project: 0x2000,
  shared_blocks: 0x4000,
  verity: 0x8000,
  orphan_present: 0x10000,
} as const;

export type CompatFeature = keyof typeof COMPAT;
export type IncompatFeature = keyof typeof INCOMPAT;
export type RoCompatFeature = keyof typeof RO_COMPAT;
export type Feature = CompatFeature | IncompatFeature | RoCompatFeature;

export interface FeatureWords {
  s_feature_compat: number;
  s_feature_incompat: number;
  s_feature_ro_compat: number;
}

/**
 * Incompat features the reader refuses up front. Everything else it can read
 * (ro_compat features never change how data is laid out for a reader; unknown
 * incompat bits are refused too).
 */
export const READ_UNSUPPORTED: readonly IncompatFeature[] = ['compression', 'journal_dev', 'dirdata', 'encrypt'];

export function hasFeature(sb: FeatureWords, f: Feature): boolean {
  if (f in COMPAT) return (sb.s_feature_compat & COMPAT[f as CompatFeature]) !== 0;
  if (f in INCOMPAT) return (sb.s_feature_incompat & INCOMPAT[f as IncompatFeature]) !== 0;
  return (sb.s_feature_ro_compat & RO_COMPAT[f as RoCompatFeature]) !== 0;
}

function names(word: number, table: Record<string, number>, kind: string): string[] {
  const out: string[] = [];
  let rest = word >>> 0;
  for (const [n, bit] of Object.entries(table)) {
    if (rest & bit) {
      out.push(n);
      rest = (rest & ~bit) >>> 0;
    }
  }
  for (let bit = 0; bit < 32; bit++) if (rest & (1 << bit)) out.push(`FEATURE_${kind}${bit}`);
  return out;
}

/** Feature names set in a superblock, in dumpe2fs' order (compat, incompat, ro_compat); unknown bits as FEATURE_Cn/In/Rn. */
export function featureNames(sb: FeatureWords): string[] {
  return [
    ...names(sb.s_feature_compat, COMPAT, 'C'),
    ...names(sb.s_feature_incompat, INCOMPAT, 'I'),
    ...names(sb.s_feature_ro_compat, RO_COMPAT, 'R'),
  ];
}

/** The three feature words for a list of names; throws on an unknown name. */
export function featureWords(list: readonly Feature[]): FeatureWords {
  const w: FeatureWords = { s_feature_compat: 0, s_feature_incompat: 0, s_feature_ro_compat: 0 };
  for (const f of list) {
    if (f in COMPAT) w.s_feature_compat = (w.s_feature_compat | COMPAT[f as CompatFeature]) >>> 0;
    else if (f in INCOMPAT) w.s_feature_incompat = (w.s_feature_incompat | INCOMPAT[f as IncompatFeature]) >>> 0;
    else if (f in RO_COMPAT) w.s_feature_ro_compat = (w.s_feature_ro_compat | RO_COMPAT[f as RoCompatFeature]) >>> 0;
    else throw new Error(`unknown ext4 feature ${String(f)}`);
  }
  return w;
}

/** Incompat features in `sb` the reader cannot handle (names; unknown bits as FEATURE_In). */
export function unsupportedForRead(sb: FeatureWords): string[] {
  const known = Object.values(INCOMPAT).reduce((a, b) => a | b, 0);
  const out: string[] = READ_UNSUPPORTED.filter((f) => hasFeature(sb, f));
  const unknown = (sb.s_feature_incompat & ~known) >>> 0;
  for (let bit = 0; bit < 32; bit++) if (unknown & (1 << bit)) out.push(`FEATURE_I${bit}`);
  return out;
}
