// Whether an object is still held by anyone after a full garbage collection: how a test shows
// that a component keeps a copy of what it needs instead of the object it was handed
// (issue 14: readings held for a poll interval were promoted to V8's old space).
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A WeakRef created in this job keeps its target alive until the job ends: wait a macrotask
 * before collecting. */
export async function collected(ref: WeakRef<object>): Promise<boolean> {
  await new Promise((r) => setImmediate(r));
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  return ref.deref() === undefined;
}

function oldSpaceUsed(): number {
  return v8.getHeapSpaceStatistics().reduce((n, s) => (s.space_name === 'old_space' || s.space_name === 'large_object_space' ? n + s.space_used_size : n), 0);
}

/** Bytes that `round` leaves promoted to V8's old space per call, once warm: each round is
 * followed by two scavenges, as a poll interval outlasts several at 10,000 points; what is
 * still referenced by then (the component's state) is promoted, the rest dies young.
 * Synchronous, so nothing else allocates in between. The warm rounds let V8 optimise the
 * code under test: unoptimised code boxes every double it stores. V8 optimises on a
 * background thread, which on a loaded machine may not have finished after the warm rounds:
 * so the figure is the least of several batches. A component that keeps what it is handed
 * shows it in every batch; code still waiting for its optimisation only in the first. */
export function promotedPerRound(round: (r: number) => void, rounds = 20, warm = 100, batches = 5): number {
  const minor = () => (gc as unknown as (o: { type: string }) => void)({ type: 'minor' });
  let r = 0;
  for (; r < warm; r++) {
    round(r);
    minor();
    minor();
  }
  let least = Infinity;
  for (let b = 0; b < batches; b++) {
    const before = oldSpaceUsed();
    for (let i = 0; i < rounds; i++, r++) {
      round(r);
      minor();
      minor();
    }
    least = Math.min(least, (oldSpaceUsed() - before) / rounds);
  }
  return least;
}

/** Bytes the V8 heap holds right now after a full collection: what is still referenced at
 * this point of a synchronous operation (how a test shows what exists at once). */
export function liveHeap(): number {
  gc();
  gc();
  return v8.getHeapStatistics().used_heap_size;
}
