import { describe, expect, it } from 'vitest';
import {
  GATEWAY_TASKS,
  NODE_RED_TASKS,
  PerfMap,
  classifyJs,
  classifyPerfScript,
  classifySample,
  formatReport,
  kernelActivity,
  parsePerfScript,
} from '../../bench/perf-classify.js';

// Trimmed by hand from `perf script -F comm,pid,tid,time,period,event,ip,sym,symoff,dso` of the
// gateway in the 1a job (node --perf-basic-prof, perf record -e cpu-clock -g -k mono); paths
// shortened, the JIT addresses kept as perf printed them.
const P = 1001001;
const FIXTURE = `node  3511/3511  100.100000:    1001001 cpu-clock: 
\tffffffff8202afa5 __tcp_push_pending_frames+0x35 ([kernel.kallsyms])
\tffffffff8201030f tcp_sendmsg_locked+0x7df ([kernel.kallsyms])
\tffffffff82010ddb tcp_sendmsg+0x2b ([kernel.kallsyms])
\tffffffff81e2eed9 sock_write_iter+0x179 ([kernel.kallsyms])
\tffffffff816bb758 vfs_write+0x398 ([kernel.kallsyms])
\tffffffff816bba2a ksys_write+0xba ([kernel.kallsyms])
\tffffffff821ef691 do_syscall_64+0x71 ([kernel.kallsyms])
\tffffffff81000130 entry_SYSCALL_64_after_hwframe+0x76 ([kernel.kallsyms])
\t           f838f __GI___libc_write+0x4f (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t          9dd4a6 non-virtual thunk to node::LibuvStreamWrap::DoTryWrite(uv_buf_t**, unsigned long*)+0x26 (/usr/bin/node)
\t          9d5d53 node::StreamBase::WriteBuffer+0x323 (/usr/bin/node)
\t          b51915 v8::internal::Builtin_HandleApiCall+0x115 (/usr/bin/node)
\t         155e376 Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit+0x36 (/usr/bin/node)
\t    7fe07c24d9fe JS:^handleWriteReq node:internal/stream_base_commons:46:24+0x27e (/tmp/perf-3511.map)
\t    7fe07c211496 JS:^writeGeneric node:internal/stream_base_commons:148:22+0xd6 (/tmp/perf-3511.map)
\t    7fe07c217138 JS:^Socket._writeGeneric node:net:927:42+0x578 (/tmp/perf-3511.map)
\t    7fe07c25655a JS:*Writable.write node:internal/streams/writable:504:36+0x2da (/tmp/perf-3511.map)
\t    7fe07c218239 JS:*send file:///w/dist/src/io/modbus/tcp-transport.js:120:10+0xb9 (/tmp/perf-3511.map)
\t    7fe07c218500 JS:*poll file:///w/dist/src/io/modbus/bus.js:61:28+0x20 (/tmp/perf-3511.map)
\t         14ce0dc Builtins_JSEntryTrampoline+0x5c (/usr/bin/node)
\t          c4a574 v8::internal::Execution::Call+0x64 (/usr/bin/node)
\t          805618 node::Environment::RunTimers+0x208 (/usr/bin/node)
\t         14a8be2 uv__run_timers+0x22 (/usr/bin/node)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.101000:    1001001 cpu-clock: 
\tffffffff81e2eed9 sock_write_iter+0x179 ([kernel.kallsyms])
\tffffffff816bd1a0 do_iter_write+0x80 ([kernel.kallsyms])
\tffffffff816bd3c4 vfs_writev+0xd4 ([kernel.kallsyms])
\tffffffff816bd4f2 do_writev+0x72 ([kernel.kallsyms])
\tffffffff821ef691 do_syscall_64+0x71 ([kernel.kallsyms])
\tffffffff81000130 entry_SYSCALL_64_after_hwframe+0x76 ([kernel.kallsyms])
\t           fd2af writev+0x4f (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t         14b7b11 uv__try_write+0x91 (/usr/bin/node)
\t          9d555f node::StreamBase::Write+0x22f (/usr/bin/node)
\t    7fe07c24d100 JS:^writevGeneric node:internal/stream_base_commons:123:23+0x100 (/tmp/perf-3511.map)
\t    7fe07c262300 JS:*emitPacket file:///w/node_modules/aedes/aedes.js:313:21+0x40 (/tmp/perf-3511.map)
\t    7fe07c262400 JS:^uncork file:///w/dist/src/broker/local-broker.js:523:11+0x10 (/tmp/perf-3511.map)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.102000:    1001001 cpu-clock: 
\t          d9a395 v8::internal::RootScavengeVisitor::VisitRootPointer+0x15 (/usr/bin/node)
\t          d9e2bc v8::internal::ScavengerCollector::CollectGarbage+0x6fc (/usr/bin/node)
\t          d12e9c v8::internal::Heap::CollectGarbage+0x29c (/usr/bin/node)
\t         11247d6 v8::internal::Runtime_AllocateInYoungGeneration+0xa6 (/usr/bin/node)
\t         155e476 Builtins_CEntry_Return1_ArgvOnStack_NoBuiltinExit+0x36 (/usr/bin/node)
\t    7fe07c262300 JS:*emitPacket file:///w/node_modules/aedes/aedes.js:313:21+0x40 (/tmp/perf-3511.map)
\t    7fe07c262400 JS:^uncork file:///w/dist/src/broker/local-broker.js:523:11+0x10 (/tmp/perf-3511.map)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.103000:    1001001 cpu-clock: 
\t         150cb91 Builtins_LoadIC+0xed1 (/usr/bin/node)
\t    7fe07c270010 JS:*parse /w/node_modules/mqtt-packet/parser.js:20:8+0x10 (/tmp/perf-3511.map)
\t    7fe07c270100 JS:^Readable.push node:internal/streams/readable:387:35+0x10 (/tmp/perf-3511.map)
\t    7fe07c270200 JS:^onStreamRead node:internal/stream_base_commons:166:22+0x10 (/tmp/perf-3511.map)
\t         14ce0dc Builtins_JSEntryTrampoline+0x5c (/usr/bin/node)
\t          9dd94f node::LibuvStreamWrap::OnUvRead+0x8f (/usr/bin/node)
\t         14b8865 uv__read+0x2f5 (/usr/bin/node)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.104000:    1001001 cpu-clock: 
\tffffffff816f1c2a ep_poll+0x3da ([kernel.kallsyms])
\tffffffff816f2a91 do_epoll_wait+0xb1 ([kernel.kallsyms])
\tffffffff816f2c7e __x64_sys_epoll_pwait+0x8e ([kernel.kallsyms])
\tffffffff821ef691 do_syscall_64+0x71 ([kernel.kallsyms])
\tffffffff81000130 entry_SYSCALL_64_after_hwframe+0x76 ([kernel.kallsyms])
\t           fe4d6 epoll_pwait+0x56 (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t         14c05fb uv__io_poll+0x4db (/usr/bin/node)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.105000:    1001001 cpu-clock: 
\t           7c1d2 sqlite3VdbeExec+0x1d2 (/w/node_modules/better-sqlite3/build/Release/better_sqlite3.node)
\t           5a0b1 Statement::JS_run+0xb1 (/w/node_modules/better-sqlite3/build/Release/better_sqlite3.node)
\t          b51915 v8::internal::Builtin_HandleApiCall+0x115 (/usr/bin/node)
\t    7fe07c280010 JS:*flush file:///w/dist/src/store/raw-store.js:200:9+0x10 (/tmp/perf-3511.map)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.106000:    1001001 cpu-clock: 
\t           7c1d2 sqlite3VdbeExec+0x1d2 (/w/node_modules/better-sqlite3/build/Release/better_sqlite3.node)
\t    7fe07c281010 JS:~run /w/node_modules/better-sqlite3/lib/methods/wrappers.js:5:22+0x10 (/tmp/perf-3511.map)
\t    7fe07c282010 JS:*enqueue file:///w/dist/src/store/outbox.js:90:9+0x10 (/tmp/perf-3511.map)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.107000:    1001001 cpu-clock: 
\t    7fe07c283ebc JS:*listOnTimeout node:internal/timers:524:25+0x23c (/tmp/perf-3511.map)
\t    7fe07c24c6fb JS:^processTimers node:internal/timers:504:25+0x47b (/tmp/perf-3511.map)
\t         14ce0dc Builtins_JSEntryTrampoline+0x5c (/usr/bin/node)
\t          805618 node::Environment::RunTimers+0x208 (/usr/bin/node)
\t         14a8be2 uv__run_timers+0x22 (/usr/bin/node)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.108000:    1001001 cpu-clock: 
\t         15c0df1 Builtins_PromiseFulfillReactionJob+0x31 (/usr/bin/node)
\t         14f7cb4 Builtins_RunMicrotasks+0x274 (/usr/bin/node)
\t          c7e636 v8::internal::MicrotaskQueue::RunMicrotasks+0x96 (/usr/bin/node)
\t          7badaf node::InternalCallbackScope::Close+0x28f (/usr/bin/node)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3511  100.500000:    1001001 cpu-clock: 
\t         150cb91 Builtins_LoadIC+0xed1 (/usr/bin/node)
\t    7fe07c220489 Eval:~ /w/node_modules/pino/lib/transport.js:1:1+0x109 (/tmp/perf-3511.map)
\t    7fe07c270100 JS:^Readable.push node:internal/streams/readable:387:35+0x10 (/tmp/perf-3511.map)
\t         14ac8a7 uv_run+0x187 (/usr/bin/node)

node  3511/3514  100.109000:    1001001 cpu-clock: 
\t         1ddab40 v8::internal::compiler::NativeContextRef::global_proxy_object+0x0 (/usr/bin/node)
\t          bd54a1 v8::internal::OptimizingCompileDispatcher::CompileNext+0x31 (/usr/bin/node)
\t          932ce1 node::(anonymous namespace)::PlatformWorkerThread+0x191 (/usr/bin/node)
\t           891f5 start_thread+0x305 (/usr/lib/x86_64-linux-gnu/libc.so.6)

mosquitto_sub  4000/4000  100.110000:    1001001 cpu-clock: 
\tffffffff816f1c2a ep_poll+0x3da ([kernel.kallsyms])
`;

// The perf map: the first entry (startup code, later freed) covered 7fe07c220489 before the
// window; jsmodbus's optimized code was written there at t = 100.3 s (between two polls).
const MAP_TEXT = [
  '7fe07c220380 200 Eval:~ /w/node_modules/pino/lib/transport.js:1:1',
  '7fe07c218200 100 JS:*send file:///w/dist/src/io/modbus/tcp-transport.js:120:10',
  '7fe07c220400 180 JS:*onData file:///w/node_modules/jsmodbus/dist/modbus-tcp-client.js:40:10',
  '',
].join('\n');
const FIRST = Buffer.byteLength(MAP_TEXT.split('\n').slice(0, 2).join('\n') + '\n');
const SIZES = [
  { t: 100.0, size: FIRST },
  { t: 100.3, size: FIRST },
  { t: 100.32, size: Buffer.byteLength(MAP_TEXT) },
];

const share = (m: Map<string, number>, k: string) => (m.get(k) ?? 0) / P;

describe('perf script classifier', () => {
  const samples = parsePerfScript(FIXTURE);
  const map = new PerfMap(MAP_TEXT, SIZES);

  it('parses every sample with its pid, tid, time and frames, innermost first', () => {
    expect(samples).toHaveLength(12);
    expect(samples[0]).toMatchObject({ comm: 'node', pid: 3511, tid: 3511, time: 100.1, period: P });
    expect(samples[0]!.frames[0]).toEqual({ addr: 'ffffffff8202afa5', sym: '__tcp_push_pending_frames', dso: '[kernel.kallsyms]' });
    // A symbol holding spaces and parentheses keeps them; the dso is the last group.
    expect(samples[0]!.frames[9]).toEqual({ addr: '9dd4a6', sym: 'non-virtual thunk to node::LibuvStreamWrap::DoTryWrite(uv_buf_t**, unsigned long*)', dso: '/usr/bin/node' });
    expect(samples[11]!.comm).toBe('mosquitto_sub');
  });

  it('counts a kernel write under tcp-transport.js as the Modbus request path, and a writev under the broker as local publish', () => {
    const w = classifySample(samples[0]!, GATEWAY_TASKS, map);
    expect(w).toEqual({ self: 'kernel', task: 'Modbus request path', kernel: 'write' });
    const v = classifySample(samples[1]!, GATEWAY_TASKS, map);
    expect(v).toEqual({ self: 'kernel', task: 'local publish', kernel: 'writev' });
  });

  it('attributes builtins to their JS caller, GC to gc, SQLite by the store above it', () => {
    expect(classifySample(samples[2]!, GATEWAY_TASKS, map)).toEqual({ self: 'gc', task: 'gc', kernel: undefined });
    // No src/ frame: mqtt-packet's socket parsing still counts to the local broker.
    expect(classifySample(samples[3]!, GATEWAY_TASKS, map)).toEqual({ self: 'mqtt-packet', task: 'local publish', kernel: undefined });
    expect(classifySample(samples[4]!, GATEWAY_TASKS, map)).toEqual({ self: 'kernel', task: 'event loop', kernel: 'epoll_pwait' });
    expect(classifySample(samples[5]!, GATEWAY_TASKS, map)).toEqual({ self: 'sqlite', task: 'raw store', kernel: undefined });
    expect(classifySample(samples[6]!, GATEWAY_TASKS, map)).toEqual({ self: 'sqlite', task: 'other store (outbox, aggregates)', kernel: undefined });
    expect(classifySample(samples[7]!, GATEWAY_TASKS, map)).toEqual({ self: 'node:timers', task: 'timers', kernel: undefined });
    expect(classifySample(samples[8]!, GATEWAY_TASKS, map)).toEqual({ self: 'v8', task: 'v8', kernel: undefined });
  });

  it('resolves a reused JIT address to the code that existed at the sample time, not to perf\'s stale pick', () => {
    // perf named it pino's startup code; at t = 100.5 the map holds jsmodbus's handler there.
    expect(classifySample(samples[9]!, GATEWAY_TASKS, map)).toEqual({ self: 'jsmodbus', task: 'Modbus request path', kernel: undefined });
    expect(map.lookup(0x7fe07c220489, 100.5)).toMatch(/jsmodbus/);
    expect(map.lookup(0x7fe07c220489, 100.2)).toMatch(/pino/);
    expect(map.lookup(0x7fe07c220389, 100.5)).toMatch(/pino/);
    expect(map.lookup(0x7fe07c100000, 100.5)).toBeUndefined();
    // Without a map, perf's name stands (and is wrong here).
    expect(classifySample(samples[9]!, GATEWAY_TASKS).self).toBe('pino');
  });

  it('adds up the main thread, the other threads and the kernel by syscall and task', () => {
    const r = classifyPerfScript(FIXTURE, { pid: 3511, map });
    expect(r.samples).toBe(11); // mosquitto_sub's sample is another process
    expect(r.totalPeriodNs).toBe(11 * P);
    expect(r.mainPeriodNs).toBe(10 * P);
    expect(share(r.self, 'kernel')).toBe(3);
    expect(share(r.tasks, 'Modbus request path')).toBe(2);
    expect(share(r.tasks, 'local publish')).toBe(2);
    expect(r.kernelTotal / P).toBe(3);
    expect(share(r.kernel.get('write')!.byTask, 'Modbus request path')).toBe(1);
    expect(share(r.kernel.get('writev')!.byTask, 'local publish')).toBe(1);
    const worker = r.threads.get('V8 platform worker (background GC, compiler)')!;
    expect(worker.total / P).toBe(1);
    expect(share(worker.self, 'v8 compiler')).toBe(1);
    expect(share(r.self, 'v8 compiler')).toBe(0);
    const text = formatReport(r);
    expect(text).toMatch(/18\.2 %\s+Modbus request path/); // 2 of 11 samples
    expect(text).toMatch(/9\.1 %\s+write\s+Modbus request path 9\.1 %/);
  });

  it('maps files to packages, our source folders and node internals', () => {
    expect(classifyJs('JS:*onData file:///a/dist/src/io/modbus/tcp-transport.js:120:10')).toEqual({ kind: 'code', self: 'src/io/modbus', key: 'src/io/modbus/tcp-transport.js' });
    expect(classifyJs('JS:^emit file:///a/dist/src/events.js:30:5')).toEqual({ kind: 'code', self: 'src/events', key: 'src/events.js' });
    expect(classifyJs('LazyCompile:~x /n/node_modules/@node-red/runtime/lib/flows/Flow.js:10:2')).toMatchObject({ self: '@node-red/runtime', key: 'node_modules/@node-red/runtime/lib/flows/Flow.js' });
    // The innermost node_modules folder is the package.
    expect(classifyJs('JS:*f /n/node_modules/aedes/node_modules/mqemitter/mqemitter.js:1:2')).toMatchObject({ self: 'mqemitter' });
    expect(classifyJs('JS:^writeGeneric node:internal/stream_base_commons:148:22')).toMatchObject({ self: 'node:net' });
    expect(classifyJs('JS:*Writable.write node:internal/streams/writable:504:36')).toMatchObject({ self: 'node:streams' });
    expect(classifyJs('JS:~ node:net:1:1')).toMatchObject({ self: 'node:net' });
  });

  it('names the kernel activity from the syscall entered, a fault or an interrupt', () => {
    expect(kernelActivity(['tcp_sendmsg', 'ksys_write', 'do_syscall_64'])).toBe('write');
    expect(kernelActivity(['do_fsync', '__x64_sys_fdatasync', 'do_syscall_64'])).toBe('fdatasync');
    expect(kernelActivity(['clear_page_erms', 'handle_mm_fault', 'do_user_addr_fault', 'exc_page_fault', 'asm_exc_page_fault'])).toBe('page fault');
    expect(kernelActivity(['net_rx_action', 'handle_softirqs', 'irq_exit_rcu', 'asm_sysvec_apic_timer_interrupt'])).toBe('interrupt');
    expect(kernelActivity(['__schedule', 'exit_to_user_mode_loop', 'do_syscall_64'], 'pthread_cond_signal@@GLIBC_2.3.2')).toBe('futex');
  });

  it('maps Node-RED\'s nodes to the same tasks', () => {
    const nr = parsePerfScript(`node-red  9/9  1.0:    1001001 cpu-clock: 
\t    7f0000000100 JS:^ /n/node_modules/@openp4nr/modbus-serial/ports/tcpport.js:256:42+0xb9 (/tmp/perf-9.map)
\t    7f0000000200 JS:*listOnTimeout node:internal/timers:524:25+0x23c (/tmp/perf-9.map)

node-red  9/9  1.1:    1001001 cpu-clock: 
\t    7f0000000300 JS:*generate /n/node_modules/mqtt-packet/writeToStream.js:1:2+0x1 (/tmp/perf-9.map)
\t    7f0000000400 JS:*publish /n/node_modules/mqtt/build/lib/client.js:1:2+0x1 (/tmp/perf-9.map)
\t    7f0000000500 JS:*input /n/node_modules/@node-red/nodes/core/network/10-mqtt.js:1:2+0x1 (/tmp/perf-9.map)
\t    7f0000000600 JS:*_emitInput /n/node_modules/@node-red/runtime/lib/nodes/Node.js:1:2+0x1 (/tmp/perf-9.map)

node-red  9/9  1.2:    1001001 cpu-clock: 
\t    7f0000000700 JS:*baseClone /n/node_modules/lodash.clonedeep/index.js:1:2+0x1 (/tmp/perf-9.map)
\t    7f0000000800 JS:*cloneMessage /n/node_modules/@node-red/util/lib/util.js:1:2+0x1 (/tmp/perf-9.map)
\t    7f0000000900 JS:*send /n/node_modules/node-red-contrib-modbus/modbus/modbus-read.js:1:2+0x1 (/tmp/perf-9.map)
`);
    expect(classifySample(nr[0]!, NODE_RED_TASKS).task).toBe('Modbus request path');
    expect(classifySample(nr[1]!, NODE_RED_TASKS).task).toBe('local publish');
    // Cloning a message is the runtime's, even when the modbus node sends it.
    expect(classifySample(nr[2]!, NODE_RED_TASKS).task).toBe('Node-RED runtime (message routing, cloning)');
  });
});
