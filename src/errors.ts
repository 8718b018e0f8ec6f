/** The one error type the service throws on purpose; the HTTP error handler turns it into a response. */
export class AppError extends Error {
  override name = 'AppError';

  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options?: ErrorOptions & { readonly details?: unknown },
  ) {
    super(message, options);
    this.details = options?.details;
  }

  readonly details: unknown;
}
