/**
 * A mistake in what the user gave us (flag, file, command word). Printed as one line, no stack,
 * exit code 2. Anything else escaping to main() is a bug in btmsim and is reported as such.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}
