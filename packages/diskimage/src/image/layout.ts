import { planLayout, PSYOPS_DEFAULTS, PSYOPS_NAMES, type LayoutPlan } from '@diskimg/partitions/internal';

// The contract's names live in @diskimg/partitions (psyops.ts); re-exported for existing importers.
export { PSYOPS_NAMES, PSYOPS_DEFAULTS };

/** Sizes of the psyopsOS layout's partitions (ESP, secret, slots A and B) and the sector size. */
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
