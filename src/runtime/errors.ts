/**
 * The HTTP status of a Kubernetes API error, in one place: client-node's `ApiException` carries it as `code`,
 * the informer's watch ERROR events as `statusCode`. Branch on this, never on message text.
 */
export function statusCode(err: unknown): number | undefined {
  if (err && typeof err === "object") {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.code === "number") return e.code;
    if (typeof e.statusCode === "number") return e.statusCode;
  }
  return undefined;
}
