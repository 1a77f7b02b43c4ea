/**
 * Boots a disk image under QEMU + OVMF (TCG) and returns the serial console log.
 * The recipe is DESIGN.md §4's: q35, TCG, OVMF code as read-only pflash plus a fresh copy of the
 * vars, the disk as virtio-blk-pci with bootindex 0, no network, no display, serial to a file,
 * -no-reboot so a guest `poweroff -f` (or a reboot) ends QEMU. A hard timeout kills QEMU, because
 * a GRUB that finds nothing to boot sits at its menu forever.
 *
 * `-icount shift=auto` by default: on a loaded host plain TCG lets guest time jump, and the kernel
 * then panics early ("IO-APIC + timer doesn't work!", seen here at load average 15). Tying the guest
 * clock to executed instructions makes that check, and the boot, independent of host load.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BootOptions {
  /** Kill QEMU after this long (default 180 s: a boot takes ~8 s alone, more on a busy machine). */
  timeoutMs?: number;
  /** Logical and physical block size the virtio disk reports (default 512). */
  sectorSize?: 512 | 4096;
  /** Guest RAM in MiB (default 512). */
  memoryMiB?: number;
  /** Discard guest writes to the image (QEMU -snapshot semantics); default false so GRUB's save_env lands. */
  snapshot?: boolean;
  /** Stop as soon as the serial log contains this (QEMU is killed, timedOut stays false). */
  until?: RegExp;
  /** Guest clock from the instruction count (-icount shift=auto); default true, see above. */
  icount?: boolean;
}

export interface BootResult {
  /** Everything the guest wrote to the serial port (firmware, GRUB, kernel, init). */
  log: string;
  /** QEMU's exit code; null when it was killed. */
  exitCode: number | null;
  timedOut: boolean;
  /** The kernel panicked (QEMU was stopped right away instead of waiting for the timeout). */
  panicked: boolean;
  durationMs: number;
}

const PANIC = /---\[ end Kernel panic/;

const OVMF_PAIRS: [code: string, vars: string][] = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
];

function ovmf(): [string, string] | undefined {
  return OVMF_PAIRS.find(([c, v]) => existsSync(c) && existsSync(v));
}

function haveCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why QEMU boot tests cannot run here, or undefined when they can. */
export function qemuSkipReason(): string | undefined {
  if (!haveCommand('qemu-system-x86_64')) return 'qemu-system-x86_64 not found (apt-get install qemu-system-x86)';
  if (!ovmf()) return 'OVMF firmware not found in /usr/share/OVMF (apt-get install ovmf)';
  return undefined;
}

/** The QEMU argument list for booting `image`, logging the serial port to `log`. */
export function qemuArgs(image: string, varsCopy: string, log: string, opts: BootOptions = {}): string[] {
  const fw = ovmf();
  if (!fw) throw new Error('qemu: OVMF firmware not found in /usr/share/OVMF (apt-get install ovmf)');
  const ss = opts.sectorSize ?? 512;
  const disk = `virtio-blk-pci,drive=d0,bootindex=0` + (ss === 512 ? '' : `,logical_block_size=${ss},physical_block_size=${ss}`);
  const drive = `file=${image},format=raw,if=none,id=d0` + (opts.snapshot ? ',snapshot=on' : '');
  return [
    '-machine', 'q35', '-accel', 'tcg', ...(opts.icount === false ? [] : ['-icount', 'shift=auto']), '-cpu', 'max', '-m', String(opts.memoryMiB ?? 512),
    '-drive', `if=pflash,format=raw,readonly=on,file=${fw[0]}`,
    '-drive', `if=pflash,format=raw,file=${varsCopy}`,
    '-drive', drive,
    '-device', disk,
    '-nic', 'none', '-vga', 'none', '-display', 'none',
    '-serial', `file:${log}`,
    '-no-reboot',
  ];
}

/** Boot `imagePath` once; resolves when QEMU exits or is killed. Never rejects for a failed boot. */
export async function bootImage(imagePath: string, opts: BootOptions = {}): Promise<BootResult> {
  const fw = ovmf();
  if (!fw) throw new Error('qemu: OVMF firmware not found in /usr/share/OVMF (apt-get install ovmf)');
  if (!existsSync(imagePath)) throw new Error(`qemu: image ${imagePath} does not exist`);
  const dir = mkdtempSync(join(tmpdir(), 'qemu-boot-'));
  const vars = join(dir, 'OVMF_VARS.fd');
  const logPath = join(dir, 'serial.log');
  copyFileSync(fw[1], vars); // fresh NVRAM each boot: no boot entries left from an earlier run
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const readLog = () => (existsSync(logPath) ? readFileSync(logPath, 'latin1') : '');
  try {
    const child = spawn('qemu-system-x86_64', qemuArgs(imagePath, vars, logPath, opts), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    let panicked = false;
    const poll = setInterval(() => {
      const log = readLog();
      if (PANIC.test(log)) panicked = true;
      if (panicked || opts.until?.test(log)) child.kill('SIGKILL');
    }, 500);
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => resolve(code));
    }).finally(() => { clearTimeout(timer); clearInterval(poll); });
    let log = readLog();
    panicked ||= PANIC.test(log);
    if (stderr.trim() && exitCode !== 0) log += `\n[qemu stderr] ${stderr.trim()}\n`;
    return { log, exitCode, timedOut, panicked, durationMs: Date.now() - started };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The lines the fixture initramfs' /init prints (see test/fixtures/build.sh). */
export interface InitReport {
  /** Kernel command line as /init read it from /proc/cmdline. */
  cmdline?: string;
  /** Content of /etc/psyops-version in the booted initramfs, e.g. `VERSION=A-20261129-000000`. */
  version?: string;
  /** The `psyopsos=` value on the command line. */
  psyopsos?: string;
}

/**
 * Parse the fixture init's report out of a serial log. /init writes each line to both /dev/console
 * and /dev/ttyS0, so a kernel message interleaved into one copy still leaves the other intact.
 */
export function parseInitReport(log: string): InitReport {
  const r: InitReport = {};
  for (const line of log.split(/\r?\n/)) {
    const c = /PSYOPS-TEST-INIT cmdline: (.*)$/.exec(line);
    if (c && r.cmdline === undefined) {
      r.cmdline = c[1].replace(/\[\s*\d+\.\d+\].*$/, '').trim(); // drop an interleaved kernel message
      r.psyopsos = /(?:^|\s)psyopsos=(\S+)/.exec(r.cmdline)?.[1];
    }
    const v = /PSYOPS-TEST-INIT version: (VERSION=\S+)/.exec(line);
    if (v && r.version === undefined) r.version = v[1];
  }
  return r;
}
