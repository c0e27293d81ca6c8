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
