import { planLayout, type LayoutPlan } from '@diskimg/partitions';

/** GPT names of the psyopsOS partitions (DESIGN.md §2); also their filesystem labels. */
export const PSYOPS_NAMES = {
  esp: 'PSYOPSOSEFI',
  secret: 'psyops-secret',
  a: 'psyopsOS-A',
  b: 'psyopsOS-B',
} as const;

export const PSYOPS_DEFAULTS = { espSize: '128M', secretSize: '128M', slotSize: '1536M', sectorSize: 512 } as const;

export interface PsyopsLayoutOptions {
  espSize?: number | string;
  secretSize?: number | string;
  slotSize?: number | string;
  sectorSize?: number;
  /** Fixed disk size (a block device); default: just big enough. */
  totalSize?: number | string;
}

/** The four-partition psyopsOS layout: ESP, secret, slot A, slot B, 1 MiB aligned. */
export function psyopsLayout(o: PsyopsLayoutOptions = {}): LayoutPlan {
  const d = PSYOPS_DEFAULTS;
  return planLayout(
    [
      { name: PSYOPS_NAMES.esp, type: 'esp', size: o.espSize ?? d.espSize },
      { name: PSYOPS_NAMES.secret, type: 'linux', size: o.secretSize ?? d.secretSize },
      { name: PSYOPS_NAMES.a, type: 'linux', size: o.slotSize ?? d.slotSize },
      { name: PSYOPS_NAMES.b, type: 'linux', size: o.slotSize ?? d.slotSize },
    ],
    { sectorSize: o.sectorSize ?? d.sectorSize, totalSize: o.totalSize },
  );
}
