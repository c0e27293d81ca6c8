// GPIO setup failures. The message is what a technician reads in the log and on the status page,
// so it names the line and says what to change.
export class GpioError extends Error {
  override readonly name = 'GpioError';
}
