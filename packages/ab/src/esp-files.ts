/**
 * `/psyopsESP.files`: the payload paths the ESP holds, one per line, written by
 * `create` and `update-esp` alike (this module is the one place that decides
 * what goes in it and writes it), so the next `update-esp` removes what a newer
 * payload drops.
 */
import type { Fat32Volume } from '@diskimg/diskimage/internal/create';
import { ESP_PATHS } from '@diskimg/partitions/internal';

/** What create or update-esp installed, one path per line: the next update-esp removes what the new payload drops. */
export const ESP_FILES_LIST = '/psyopsESP.files';
/** At most this many bytes are read back (a list of a full 128 MiB ESP of tiny files is far smaller). */
export const MAX_ESP_FILES_LIST_BYTES = 4 << 20;

/** Files on the ESP that are ours, never the payload's (lower case: FAT names ignore case). */
const MANAGED = new Set([ESP_PATHS.grubCfg, ESP_PATHS.grubenv, ESP_PATHS.signature, ESP_FILES_LIST].map((p) => p.toLowerCase()));

/** True for grub.cfg, grubenv, the ESP signature and the list itself: diskimg writes them, a payload's copy is not installed nor listed. */
export function isManagedEspPath(path: string): boolean {
  return MANAGED.has(path.toLowerCase());
}

/** The list's bytes for the payload files installed, in the order given ("/EFI/BOOT/BOOTX64.EFI\n…"). */
export function renderEspFilesList(paths: readonly string[]): string {
  return paths.filter((p) => !isManagedEspPath(p)).map((p) => `${p}\n`).join('');
}

/** The paths of a list read back. */
export function parseEspFilesList(text: string): string[] {
  return text.split('\n').filter(Boolean);
}

/** Write (or replace, crash-safe) the list on an open ESP; returns its text. */
export async function writeEspFilesList(vol: Fat32Volume, paths: readonly string[], mtime: number): Promise<string> {
  const text = renderEspFilesList(paths);
  await vol.writeFile(ESP_FILES_LIST, Buffer.from(text, 'utf8'), { mtime });
  return text;
}
