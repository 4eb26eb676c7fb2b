/**
 * What the runtime needs of an API client, so that runtime/ depends on nothing above it: JSON requests (the Lease,
 * the informer's LIST pages) and a watch. The operator's `KubeClient` (src/kube/client.ts) is one; tests pass fakes.
 */
export type Query = Record<string, string | number | boolean | undefined>;

/** How a watch may shape its events. */
export interface WatchOptions {
  /** Cut `metadata.managedFields` out of each event's text before parsing it (for callers that drop it anyway). */
  dropManagedFields?: boolean;
}

export interface ApiRequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
}

export interface ApiClient {
  /** Resolves with the parsed JSON answer; rejects with an error carrying the HTTP status as `code`. */
  request<T>(method: string, path: string, opts?: ApiRequestOptions): Promise<T>;
  get<T>(path: string, opts?: ApiRequestOptions): Promise<T>;
  /**
   * Watch `path`: `callback(type, object)` per event and `done(err)` once at the end (null for a clean end, an error
   * named TimeoutError after a quiet period, an error with `statusCode` when the watch is refused).
   */
  watch(
    path: string,
    query: Query,
    callback: (phase: string, obj: any, event?: any) => void,
    done: (err: unknown) => void,
    opts?: WatchOptions,
  ): Promise<AbortController>;
}
