// The clock for durations: timeouts, backoffs, debounce, watchdog liveness, alarm hold times.
// performance.now() reads libuv's uv_hrtime (CLOCK_MONOTONIC on Linux): it never steps when
// NTP sets the wall clock or a box without RTC boots with a stale time, so a step can neither
// shorten nor stretch a duration. Date.now() is only for stamping data shown to people or sent
// to the platform. Under libfaketime with FAKETIME_DONT_FAKE_MONOTONIC=1 only Date.now() moves.

/** Milliseconds on the monotonic clock (fractional; its zero is arbitrary: compare, never show). */
export function monoNow(): number {
  // The global, looked up on each call, so that test fake timers (which replace it) apply.
  return performance.now();
}

/** A source of monotonic milliseconds; classes take one so tests can inject a clock. */
export type MonoClock = () => number;
