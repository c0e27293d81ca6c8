// What GpioInput needs from a GPIO backend: sysfs via onoff today, libgpiod later, a fake in tests.
export type Level = 0 | 1;

export interface GpioLine {
  readonly number: number;
  /** Logical level (activeLow already applied by the backend). */
  read(): Level;
  /** Edge interrupts on both edges; throws if this pin/platform cannot deliver them. */
  watch(cb: (level: Level) => void): void;
  close(): void;
}

export interface GpioBackend {
  readonly name: string;
  /** null if usable, else why not (shown in log and status). */
  unavailable(): string | null;
  resolve(line: number, chip: string | undefined): number; // sysfs number
  open(number: number, opts: { activeLow: boolean; edges: boolean }): GpioLine;
}
