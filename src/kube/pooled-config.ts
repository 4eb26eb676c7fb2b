/**
 * A KubeConfig whose API requests share one connection pool.
 *
 * client-node 2.0 builds a new undici Agent for every API request
 * (KubeConfig.applySecurityAuthentication -> createDispatcher), so every call
 * opened a new TCP connection, created a new TLS SecureContext and did a full
 * handshake: a CPU profile of 100 FineTuneJobs showed about a quarter of the
 * operator's busy time in TLS setup. Here the first dispatcher built for a
 * cluster/user is kept and reused (keep-alive, pooled sockets); it is replaced
 * every `refreshMs` so certificates rotated on disk are picked up, and the old
 * pool is closed gracefully (requests in flight finish).
 */
import { KubeConfig } from "@kubernetes/client-node";

type RequestContext = Parameters<KubeConfig["applySecurityAuthentication"]>[0];
type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

export class PooledKubeConfig extends KubeConfig {
  readonly #pools = new Map<string, { dispatcher: Dispatcher; createdAt: number }>();
  readonly #refreshMs: number;
  readonly #now: () => number;

  constructor(opts: { refreshMs?: number; now?: () => number } = {}) {
    super();
    this.#refreshMs = opts.refreshMs ?? 10 * 60_000;
    this.#now = opts.now ?? Date.now;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const built = context.getDispatcher();
    if (!built) return; // plain http without TLS options: fetch's global pool already reuses connections
    const key = this.#poolKey();
    const now = this.#now();
    const pool = this.#pools.get(key);
    if (pool && now - pool.createdAt < this.#refreshMs) {
      context.setDispatcher(pool.dispatcher);
      void built.close().catch(() => {}); // never connected: closing only drops the object
      return;
    }
    this.#pools.set(key, { dispatcher: built, createdAt: now });
    if (pool) void pool.dispatcher.close().catch(() => {});
  }

  /** Number of distinct pools created so far (for tests). */
  get poolCount(): number {
    return this.#pools.size;
  }

  #poolKey(): string {
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    // Everything that shapes the TLS connection; bearer tokens travel in headers and may change freely.
    return JSON.stringify([
      cluster?.name,
      cluster?.server,
      cluster?.caFile,
      cluster?.caData,
      cluster?.skipTLSVerify,
      cluster?.tlsServerName,
      cluster?.proxyUrl,
      user?.name,
      user?.certFile,
      user?.certData,
      user?.keyFile,
    ]);
  }
}
