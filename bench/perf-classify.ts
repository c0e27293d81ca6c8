// Classifies `perf script` output of a Node process recorded with `perf record -e cpu-clock -g`
// and `node --perf-basic-prof` (bench/perf-profile.ts). Pure functions over text, no I/O.
// Each sample gets (1) a self category: its innermost frame that can be attributed, walking
// outwards past V8 builtins and runtime functions to the JS that called them; kernel frames
// count as "kernel" and are split by the syscall they are under; and (2) a task: the innermost
// frame anywhere on the stack that one of the task rules (GATEWAY_TASKS, NODE_RED_TASKS) names,
// so that a kernel write under tcp-transport.js counts as the Modbus request path.

export interface Frame {
  addr: string;
  sym: string;
  dso: string;
}

export interface Sample {
  comm: string;
  pid: number | undefined;
  tid: number;
  /** Seconds on perf's clock (CLOCK_MONOTONIC with perf record -k mono). */
  time: number;
  /** cpu-clock period in ns (1e9 / frequency). */
  period: number;
  /** Innermost first, as perf script prints them. */
  frames: Frame[];
}

const HEADER = /^(\S.*?)\s+(?:(\d+)\/)?(\d+)\s+(?:\[\d+\]\s+)?([\d.]+):\s+(\d+)\s+(\S+?):?\s*$/;
// "addr sym+0xoff (dso)": the symbol may hold spaces and parentheses, the dso is the last group.
const FRAME = /^\s+([0-9a-f]+)\s+(.*?)\s+\(([^()]*)\)\s*$/;

/** `perf script` text (default fields or -F comm,pid,tid,time,period,event,ip,sym,symoff,dso). */
export function parsePerfScript(text: string): Sample[] {
  const out: Sample[] = [];
  let cur: Sample | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) {
      cur = undefined;
      continue;
    }
    if (!/^\s/.test(line)) {
      const m = HEADER.exec(line);
      if (!m) continue;
      cur = { comm: m[1]!.trim(), pid: m[2] ? Number(m[2]) : undefined, tid: Number(m[3]), time: Number(m[4]), period: Number(m[5]), frames: [] };
      out.push(cur);
      continue;
    }
    const f = FRAME.exec(line);
    if (f && cur) cur.frames.push({ addr: f[1]!, sym: f[2]!.replace(/\+0x[0-9a-f]+$/, ''), dso: f[3]! });
  }
  return out;
}

/** /tmp/perf-PID.map as V8 writes it: "start size name", appended as code is created. V8 frees
 * code and reuses its address, so the file holds stale entries that perf may pick (startup code
 * overwritten by code optimized later). Here an address resolves to the newest entry that
 * already existed at the sample's time. Entry times come from `sizes`: the file's length polled
 * during the recording (CLOCK_MONOTONIC seconds, as `perf record -k mono` stamps samples); an
 * entry is taken to exist after the last poll that did not contain it yet. */
export class PerfMap {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly names: string[] = [];
  private readonly seqs: number[] = [];
  /** Time after which the entry may exist (-Infinity: before the first poll). */
  private readonly after: number[] = [];
  private maxSize = 0;
  private readonly cache = new Map<number, number[]>();

  constructor(text: string, sizes: { t: number; size: number }[] = []) {
    const entries: { start: number; end: number; name: string; seq: number; after: number }[] = [];
    let offset = 0;
    let p = 0;
    let after = -Infinity;
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
      const next = offset + Buffer.byteLength(line) + 1;
      if (m) {
        // The polls at which the file was still shorter than this entry's end.
        while (p < sizes.length && sizes[p]!.size < next) after = sizes[p++]!.t;
        const start = parseInt(m[1]!, 16);
        const size = parseInt(m[2]!, 16);
        entries.push({ start, end: start + size, name: m[3]!, seq: entries.length, after });
        this.maxSize = Math.max(this.maxSize, size);
      }
      offset = next;
    }
    entries.sort((a, b) => a.start - b.start || a.seq - b.seq);
    for (const e of entries) {
      this.starts.push(e.start);
      this.ends.push(e.end);
      this.names.push(e.name);
      this.seqs.push(e.seq);
      this.after.push(e.after);
    }
  }

  /** Indexes of the entries covering addr, newest first. */
  private covering(addr: number): number[] {
    let hit = this.cache.get(addr);
    if (hit) return hit;
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    hit = [];
    for (let i = hi; i >= 0 && this.starts[i]! >= addr - this.maxSize; i--) if (addr < this.ends[i]!) hit.push(i);
    hit.sort((a, b) => this.seqs[b]! - this.seqs[a]!);
    this.cache.set(addr, hit);
    return hit;
  }

  /** The code at addr at time t (CLOCK_MONOTONIC s; omitted: the newest entry). */
  lookup(addr: number, t = Infinity): string | undefined {
    for (const i of this.covering(addr)) if (this.after[i]! < t) return this.names[i];
    return undefined;
  }
}

/** What one frame says about where the time goes. */
export type FrameClass =
  /** Attributable: `self` is the self category, `key` what task rules match. */
  | { kind: 'code'; self: string; key: string }
  | { kind: 'kernel'; sym: string }
  /** V8 builtins, runtime, IC and unknown code: attributed to the code that called them. */
  | { kind: 'skip' }
  /** Where V8 is entered from C++ (JSEntry, microtasks): V8 work below it with no JS is "v8". */
  | { kind: 'entry' };

const GC =
  /\bHeap::|\bLocalHeap::|Scaveng|MarkCompact|MinorMarkSweep|MinorMS|Marking|Sweeper|Evacuat|GCTracer|MemoryAllocator::|MemoryReducer|ArrayBufferSweeper|RememberedSet|SlotSet|PagedSpace|SemiSpace|NewSpace::|PointersUpdating|CollectGarbage|GarbageCollect|\bcppgc::|HeapAllocator::/;
const COMPILER =
  /v8::internal::(compiler::|maglev::|baseline::|turboshaft::|interpreter::Bytecode(Generator|ArrayBuilder|ArrayWriter)|Parser|PreParser|Scanner|Compiler::|Zone\b|Zone::|CodeGenerator|Assembler|AstValueFactory|DeclarationScope|Scope::|FuncNameInferrer|OptimizingCompileDispatcher|Deoptimizer|\(anonymous namespace\)::Compile|BackgroundCompile|UnoptimizedCompil)/;
const ENTRY = /^Builtins_(JSEntry|JSConstructEntry|JSRunMicrotasksEntry|RunMicrotasks)|v8::internal::Execution::|v8::internal::MicrotaskQueue::|^v8::Function::Call|v8::internal::\(anonymous namespace\)::Invoke/;
const NODE_TIMERS = /^node::Environment::RunTimers|^uv__run_timers/;
const JS_PREFIX = /^(?:JS|LazyCompile|Function|Eval|Script):[*~^+]?/;

const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const isKernelAddr = (addr: string) => addr.length === 16 && addr.startsWith('ffff');

/** "node:internal/streams/writable" -> "node:streams"; stream_base_commons is the socket write path. */
function nodeArea(file: string): string {
  const rest = file.replace(/^node:(internal\/)?/, '');
  const area = rest.split('/')[0]!.replace(/\.js$/, '');
  return `node:${area === 'stream_base_commons' ? 'net' : area}`;
}

/** A JS frame from the perf map, e.g. "JS:*onData file:///x/dist/src/io/modbus/tcp-transport.js:120:10". */
export function classifyJs(name: string): FrameClass {
  const rest = name.replace(JS_PREFIX, '');
  const m = /(?:^|\s)((?:file:\/\/)?\/\S*?|node:\S+?)(?::\d+)?(?::\d+)?$/.exec(rest);
  if (!m) {
    // Node-RED runs a function node's code in a vm script named "Function node:<id>[<name>]".
    if (/Function node/.test(rest)) return { kind: 'code', self: 'node-red function node code', key: 'vm:function node' };
    return { kind: 'code', self: 'js (no file)', key: `js:${rest}` };
  }
  const file = m[1]!.replace(/^file:\/\//, '');
  if (file.startsWith('node:')) return { kind: 'code', self: nodeArea(file), key: file };
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const inPkg = file.slice(nm + '/node_modules/'.length);
    const parts = inPkg.split('/');
    const pkg = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
    return { kind: 'code', self: pkg, key: `node_modules/${inPkg}` };
  }
  const src = /\/dist\/(src|bench)\/(.*)$/.exec(file);
  if (src) {
    const rel = src[2]!;
    const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : rel.replace(/\.js$/, '');
    return { kind: 'code', self: `${src[1]}/${dir}`, key: `${src[1]}/${rel}` };
  }
  return { kind: 'code', self: 'js (other file)', key: file };
}

/** One frame; `map` re-resolves JIT addresses (perf's own pick among stale entries is unreliable). */
export function classifyFrame(f: Frame, map?: PerfMap, time?: number): FrameClass {
  if (f.dso === '[kernel.kallsyms]' || isKernelAddr(f.addr)) return { kind: 'kernel', sym: f.sym };
  if (/perf-\d+\.map$/.test(f.dso) || f.dso === '[unknown]' || f.dso === '//anon') {
    const sym = (map && map.lookup(parseInt(f.addr, 16), time)) ?? f.sym;
    if (JS_PREFIX.test(sym)) return classifyJs(sym);
    // Builtin:, BytecodeHandler:, Stub:, RegExp:, [unknown]: V8 on behalf of its caller.
    return { kind: 'skip' };
  }
  const sym = f.sym;
  const dso = base(f.dso);
  if (dso === 'better_sqlite3.node' || /^sqlite3/.test(sym)) return { kind: 'code', self: 'sqlite', key: 'native:sqlite' };
  if (dso === '[vdso]') return { kind: 'code', self: 'vdso (clock_gettime)', key: 'native:vdso' };
  if (/^libc[.-]|^ld-linux|^libm[.-]|^libpthread/.test(dso)) {
    if (/epoll/.test(sym)) return { kind: 'code', self: 'event loop', key: 'native:event loop' };
    return { kind: 'code', self: 'libc', key: `native:libc:${sym}` };
  }
  if (/^libstdc\+\+/.test(dso)) return { kind: 'code', self: 'libstdc++', key: 'native:libstdc++' };
  if (dso.endsWith('.node')) return { kind: 'code', self: `addon ${dso}`, key: `native:addon:${dso}` };
  // The node binary: V8, libuv and Node's C++ are all linked into it.
  if (sym === '[unknown]') return { kind: 'skip' };
  if (ENTRY.test(sym)) return { kind: 'entry' };
  if (NODE_TIMERS.test(sym)) return { kind: 'code', self: 'event loop', key: 'native:timers' };
  if (/^uv_|^uv__/.test(sym)) return { kind: 'code', self: 'event loop', key: 'native:event loop' };
  if (GC.test(sym)) return { kind: 'code', self: 'gc', key: 'native:gc' };
  if (COMPILER.test(sym)) return { kind: 'code', self: 'v8 compiler', key: 'native:v8 compiler' };
  if (/^Builtins_|^v8::|^Builtin_/.test(sym)) return { kind: 'skip' };
  if (/^node::|^napi_|^non-virtual thunk to node::/.test(sym)) return { kind: 'code', self: 'node C++', key: `native:node:${sym}` };
  return { kind: 'code', self: `native ${dso}`, key: `native:${dso}` };
}

const SYSCALL = /^(?:__x64_sys|__ia32_sys|__arm64_sys|__se_sys|__do_sys|ksys|__sys)_(\w+?)(?:\.\w+\.\d+)*$/;
const KERNEL_FALLBACK: [RegExp, string][] = [
  [/^do_epoll_wait|^ep_poll/, 'epoll_wait'],
  [/^do_futex|^futex_/, 'futex'],
  [/^vfs_writev|^do_writev/, 'writev'],
  [/^vfs_write/, 'write'],
  [/^vfs_read/, 'read'],
  [/^vfs_fsync|^do_fsync/, 'fsync'],
];

/** What the kernel frames of a sample (innermost first) were doing: the syscall they are
 * under, or a page fault, or an interrupt that arrived while user code ran. */
export function kernelActivity(syms: string[], firstUserSym?: string): string {
  let name: string | undefined;
  for (const s of syms) {
    const m = SYSCALL.exec(s);
    if (m) name = m[1]; // keep going: the outermost one is the syscall entered
  }
  if (name) return name;
  for (const s of syms) for (const [re, n] of KERNEL_FALLBACK) if (re.test(s)) return n;
  if (syms.some((s) => /exc_page_fault|do_user_addr_fault|handle_mm_fault/.test(s))) return 'page fault';
  if (syms.some((s) => /^asm_sysvec_|^asm_common_interrupt|^sysvec_|irq_exit|^__do_softirq|^handle_softirqs/.test(s))) return 'interrupt';
  if (syms.some((s) => /^do_syscall_64|^entry_SYSCALL/.test(s))) {
    // The libc wrapper above the kernel often names the syscall (__GI___libc_write).
    if (firstUserSym && /pthread_cond|lll_lock|lll_unlock|futex/.test(firstUserSym)) return 'futex';
    const w = firstUserSym && /(?:__libc_|__GI___libc_|__GI___|^)(write|writev|read|pwrite64|pread64|fsync|fdatasync|epoll_wait|epoll_pwait|madvise|mmap|munmap|mprotect)\b/.exec(firstUserSym);
    return w ? w[1]! : 'syscall (unnamed)';
  }
  return 'kernel (other)';
}

export interface TaskRule {
  task: string;
  /** Anchors and libraries: in each tier the innermost frame that a rule matches wins; fallback:
   * the first rule that any frame matches. Matched against a frame's key: "src/io/modbus/tcp-transport.js", "node_modules/aedes/aedes.js",
   * "node:internal/timers", "native:gc", "native:timers", "native:event loop", "vm:function node". */
  match: RegExp;
}

/** Tasks by rule tiers. anchors: our own code (or Node-RED's nodes), which owns whatever it calls
 * (sockets, streams, SQLite, timers it sets); libraries: for stacks with no anchor (a socket's
 * data handler inside jsmodbus or aedes); fallback: machinery with no caller known. In each tier
 * the innermost frame that a rule matches wins. Tune here. */
export interface TaskMapping {
  anchors: TaskRule[];
  libraries: TaskRule[];
  fallback: TaskRule[];
}

// Fallback rules go by priority (the first rule that any frame matches), not by frame: uv_run is
// under every stack, so "event loop" is only what has no JS and no timer above libuv.
const COMMON_FALLBACK: TaskRule[] = [
  { task: 'timers', match: /^node:internal\/timers|^node:timers|^native:timers/ },
  { task: 'v8 compiler', match: /^native:v8 compiler/ },
  { task: 'sockets and streams, caller unknown', match: /^node:(net|internal\/stream_base_commons|internal\/streams\/|stream)/ },
  { task: 'ticks and microtasks', match: /^node:internal\/process\// },
  { task: 'node internals, caller unknown', match: /^node:/ },
  { task: 'event loop', match: /^native:event loop/ },
  { task: 'libc, caller unknown (libc has no frame pointers)', match: /^native:libc:/ },
];

/** Libraries that run on their own (timers, perf_hooks observers) in both systems. */
const COMMON_LIBRARIES: TaskRule[] = [
  { task: 'metrics (prom-client, perf_hooks)', match: /^node_modules\/prom-client\/|^node:internal\/perf\// },
  { task: 'logging (pino)', match: /^node_modules\/(pino[^/]*|thread-stream|sonic-boom)\// },
];

export const GATEWAY_TASKS: TaskMapping = {
  anchors: [
    { task: 'gc', match: /^native:gc$/ },
    { task: 'Modbus request path', match: /^src\/io\/modbus\// },
    { task: 'local publish', match: /^src\/broker\// },
    { task: 'raw store', match: /^src\/store\/raw-/ },
    { task: 'other store (outbox, aggregates)', match: /^src\/store\// },
    { task: 'aggregation', match: /^src\/aggregate\// },
    { task: 'pipeline', match: /^src\/(pipeline\/|events\.js|state\/)/ },
    { task: 'uplink', match: /^src\/uplink\// },
    { task: 'other src', match: /^src\// },
  ],
  libraries: [
    { task: 'Modbus request path', match: /^node_modules\/(jsmodbus|crc)\// },
    { task: 'local publish', match: /^node_modules\/(aedes[^/]*|mqtt-packet|mqemitter|qlobber|fastparallel|fastfall|fastseries|reusify|retimer|hyperid|bl)\// },
    { task: 'uplink', match: /^node_modules\/mqtt\// },
    ...COMMON_LIBRARIES,
  ],
  fallback: COMMON_FALLBACK,
};

/** The same tasks for Node-RED with node-red-contrib-modbus, a function node and mqtt out. */
export const NODE_RED_TASKS: TaskMapping = {
  anchors: [
    { task: 'gc', match: /^native:gc$/ },
    { task: 'Modbus request path', match: /^node_modules\/node-red-contrib-modbus\// },
    { task: 'local publish', match: /^node_modules\/@node-red\/nodes\/core\/network\/10-mqtt/ },
    { task: 'pipeline', match: /^vm:function node|^node_modules\/@node-red\/nodes\/core\/function\// },
    { task: 'Node-RED runtime (message routing, cloning)', match: /^node_modules\/(@node-red\/(runtime|util)|node-red)\// },
  ],
  libraries: [
    // node-red-contrib-modbus's own dependencies: its modbus-serial fork, state machine, queue ids.
    { task: 'Modbus request path', match: /^node_modules\/((@[^/]+\/)?modbus-serial|jsmodbus|@xstate\/fsm|bson|underscore)\// },
    { task: 'local publish', match: /^node_modules\/(mqtt|mqtt-packet)\// },
    { task: 'Node-RED runtime (message routing, cloning)', match: /^node_modules\/lodash/ },
    ...COMMON_LIBRARIES,
  ],
  fallback: COMMON_FALLBACK,
};

export interface Classified {
  self: string;
  task: string;
  /** The kernel activity if the innermost frame is in the kernel. */
  kernel: string | undefined;
}

/** The innermost frame that any rule matches (the first such rule for that frame). */
function innermostMatch(keys: (string | undefined)[], rules: TaskRule[]): string | undefined {
  for (const k of keys) {
    if (k === undefined) continue;
    for (const r of rules) if (r.match.test(k)) return r.task;
  }
  return undefined;
}

/** The first rule that any frame matches. */
function priorityMatch(keys: (string | undefined)[], rules: TaskRule[]): string | undefined {
  for (const r of rules) if (keys.some((k) => k !== undefined && r.match.test(k))) return r.task;
  return undefined;
}

/** Self category, task and kernel activity of one sample. */
export function classifySample(s: Sample, tasks: TaskMapping, map?: PerfMap): Classified {
  const classes = s.frames.map((f) => classifyFrame(f, map, s.time));
  let kernel: string | undefined;
  let self: string | undefined;
  let i = 0;
  if (classes[0]?.kind === 'kernel') {
    while (i < classes.length && classes[i]!.kind === 'kernel') i++;
    kernel = kernelActivity(
      s.frames.slice(0, i).map((f) => f.sym),
      s.frames[i]?.sym,
    );
    self = 'kernel';
  } else {
    let skipped = false;
    for (const c of classes) {
      if (c.kind === 'code') {
        self = c.self;
        break;
      }
      if (c.kind === 'entry') {
        self = 'v8';
        break;
      }
      if (c.kind === 'skip') skipped = true;
    }
    self ??= skipped ? 'v8' : 'unknown';
  }
  const keys = classes.map((c) => (c.kind === 'code' ? c.key : undefined));
  // V8 with no JS inside (promise jobs, microtask runs) is "v8", not the event loop under it.
  const task = innermostMatch(keys, tasks.anchors) ?? innermostMatch(keys, tasks.libraries) ?? (self === 'v8' ? 'v8' : priorityMatch(keys, tasks.fallback)) ?? 'other';
  return { self, task, kernel };
}

export interface Report {
  samples: number;
  totalPeriodNs: number;
  mainPeriodNs: number;
  self: Map<string, number>;
  tasks: Map<string, number>;
  /** Kernel time on the main thread by activity, and within each activity by task. */
  kernel: Map<string, { total: number; byTask: Map<string, number> }>;
  kernelTotal: number;
  /** Other threads by kind (V8 platform worker, libuv pool, ...): total and self categories. */
  threads: Map<string, { total: number; tids: Set<number>; self: Map<string, number> }>;
}

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/** What kind of thread a sample ran on, from its outermost frames (Node names few threads). */
export function threadKind(s: Sample): string {
  const syms = s.frames.map((f) => f.sym);
  if (syms.some((x) => /PlatformWorkerThread|WorkerThreadsTaskRunner/.test(x))) return 'V8 platform worker (background GC, compiler)';
  if (syms.some((x) => /^worker$|uv__work_done|^uv__threadpool|^worker\b/.test(x))) return 'libuv thread pool';
  if (syms.some((x) => /SignalInspectorMain|inspector/i.test(x))) return 'inspector';
  return `thread "${s.comm}"`;
}

/** Classifies every sample of process `pid` (its main thread is the one whose tid is pid). */
export function classifyPerfScript(text: string, o: { pid: number; tasks?: TaskMapping; map?: PerfMap }): Report {
  const tasks = o.tasks ?? GATEWAY_TASKS;
  const r: Report = { samples: 0, totalPeriodNs: 0, mainPeriodNs: 0, self: new Map(), tasks: new Map(), kernel: new Map(), kernelTotal: 0, threads: new Map() };
  for (const s of parsePerfScript(text)) {
    if (s.pid !== undefined && s.pid !== o.pid) continue;
    r.samples++;
    r.totalPeriodNs += s.period;
    const c = classifySample(s, tasks, o.map);
    if (s.tid !== o.pid) {
      const kind = threadKind(s);
      let t = r.threads.get(kind);
      if (!t) r.threads.set(kind, (t = { total: 0, tids: new Set(), self: new Map() }));
      t.total += s.period;
      t.tids.add(s.tid);
      add(t.self, c.kernel ? `kernel ${c.kernel}` : c.self, s.period);
      continue;
    }
    r.mainPeriodNs += s.period;
    add(r.self, c.self, s.period);
    add(r.tasks, c.task, s.period);
    if (c.kernel) {
      r.kernelTotal += s.period;
      let k = r.kernel.get(c.kernel);
      if (!k) r.kernel.set(c.kernel, (k = { total: 0, byTask: new Map() }));
      k.total += s.period;
      add(k.byTask, c.task, s.period);
    }
  }
  return r;
}

const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);

/** The tables, as shares of all the process's samples (every thread). */
export function formatReport(r: Report, o: { minPct?: number } = {}): string {
  const min = o.minPct ?? 0.3;
  const pct = (v: number) => `${((100 * v) / (r.totalPeriodNs || 1)).toFixed(1).padStart(5)} %`;
  const lines: string[] = [];
  const table = (title: string, m: Map<string, number>) => {
    lines.push(title);
    let rest = 0;
    for (const [k, v] of sorted(m)) {
      if ((100 * v) / r.totalPeriodNs < min) rest += v;
      else lines.push(`  ${pct(v)}  ${k}`);
    }
    if (rest) lines.push(`  ${pct(rest)}  (the rest, each < ${min} %)`);
  };
  lines.push(`main thread: ${pct(r.mainPeriodNs).trim()} of the process's CPU samples; other threads: ${pct(r.totalPeriodNs - r.mainPeriodNs).trim()}`);
  table('self, main thread, by category (innermost attributable frame; builtins count to their JS caller):', r.self);
  table('inclusive, main thread, by task (innermost frame a task rule names; kernel time included):', r.tasks);
  lines.push(`kernel, main thread: ${pct(r.kernelTotal).trim()} in all; by syscall (and by task above it):`);
  for (const [k, v] of [...r.kernel].sort((a, b) => b[1].total - a[1].total)) {
    if ((100 * v.total) / r.totalPeriodNs < min) continue;
    const by = sorted(v.byTask)
      .filter(([, n]) => (100 * n) / r.totalPeriodNs >= 0.1)
      .map(([t, n]) => `${t} ${pct(n).trim()}`)
      .join(', ');
    lines.push(`  ${pct(v.total)}  ${k.padEnd(18)} ${by}`);
  }
  lines.push('other threads:');
  for (const [k, t] of [...r.threads].sort((a, b) => b[1].total - a[1].total)) {
    const top = sorted(t.self)
      .slice(0, 4)
      .map(([c, n]) => `${c} ${pct(n).trim()}`)
      .join(', ');
    lines.push(`  ${pct(t.total)}  ${k} (${t.tids.size} thread${t.tids.size === 1 ? '' : 's'}): ${top}`);
  }
  return lines.join('\n');
}
