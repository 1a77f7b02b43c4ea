/** A small least-recently-used cache (Map keeps insertion order: re-insert on hit). */
export class Lru<K, V> {
  private readonly m = new Map<K, V>();
  constructor(readonly capacity: number) {}
  get(k: K): V | undefined {
    const v = this.m.get(k);
    if (v !== undefined) {
      this.m.delete(k);
      this.m.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.m.delete(k);
    this.m.set(k, v);
    if (this.m.size > this.capacity) this.m.delete(this.m.keys().next().value as K);
  }
}
