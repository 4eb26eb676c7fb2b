import { statusCode } from "../runtime/errors.ts";

/** Branch on the HTTP status of API errors, never on message text. */
export { statusCode };

export const isNotFound = (err: unknown) => statusCode(err) === 404;
export const isConflict = (err: unknown) => statusCode(err) === 409;
export const isAlreadyExists = isConflict;

/**
 * The API server said no to the request itself (a quota, an admission webhook, RBAC, an invalid object): a 4xx other
 * than a conflict, a timeout or throttling. Sending it again unchanged fails again until someone changes the cluster.
 */
export function isRefusal(err: unknown): boolean {
  const code = statusCode(err);
  return code !== undefined && code >= 400 && code < 500 && code !== 408 && code !== 409 && code !== 429;
}

/** One line for logs and CLI output: the API server's message when there is one. */
export function errorMessage(err: unknown): string {
  if (err && typeof err === "object") {
    const body = (err as { body?: unknown }).body;
    if (typeof body === "string") {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return parsed.message;
      } catch {
        // not JSON; fall through
      }
    } else if (body && typeof body === "object" && typeof (body as { message?: unknown }).message === "string") {
      return (body as { message: string }).message;
    }
    if (err instanceof Error) return err.message.split("\n")[0] ?? err.message;
  }
  return String(err);
}
