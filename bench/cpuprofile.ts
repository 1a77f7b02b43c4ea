/**
 * Summarize a V8 .cpuprofile (from `node --cpu-prof`): top frames by self
 * time and by inclusive time, as "function file:line". Paths are shortened
 * to what follows packages/ or node_modules/.
 * Caveat: the profiler samples the main thread on a timer, so on a loaded
 * machine time spent preempted is charged to whatever was running (often the
 * call that just woke a libuv worker: writeBuffer, read). Use CPU totals from
 * GNU time alongside it.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface Frame {
  frame: string;
  ms: number;
  pct: number;
}

export function summarizeProfile(path: string, top = 15): { totalMs: number; self: Frame[]; inclusive: Frame[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const perNode = new Map<number, number>();
  p.samples.forEach((id, i) => perNode.set(id, (perNode.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const name = (n: Node) => {
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*\/(packages|node_modules)\//, '');
    return `${n.callFrame.functionName || '(anonymous)'}${url ? ` ${url}:${n.callFrame.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  for (const [id, us] of perNode) {
    total += us;
    const k = name(byId.get(id)!);
    self.set(k, (self.get(k) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = name(byId.get(cur)!);
      if (!seen.has(kk)) incl.set(kk, (incl.get(kk) ?? 0) + us);
      seen.add(kk);
    }
  }
  const rank = (m: Map<string, number>, skip: (k: string) => boolean) =>
    [...m].filter(([k]) => !skip(k)).sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([frame, us]) => ({ frame, ms: us / 1000, pct: (100 * us) / total }));
  const boring = (k: string) => k.startsWith('(root)') || k.startsWith('(program)');
  return {
    totalMs: total / 1000,
    self: rank(self, boring),
    // Inclusive: only our code (packages/…), where a fix would go.
    inclusive: rank(incl, (k) => boring(k) || !/ (diskimage|ab|cli|grubcfg|partitions)\//.test(k)),
  };
}
