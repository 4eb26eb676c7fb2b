/** Free loopback ports, chosen at `up` and stored in ports.json. */
import { createServer } from "node:net";

export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  /** kwok's kubelet-compatible server (logs, healthz); advertised as every fake node's kubelet port. */
  kwok: number;
}

/**
 * Ports below Linux's ephemeral range (32768-60999 by default). A kernel-chosen port (port 0) comes from that range,
 * and so do the source ports of outgoing connections: while a component is down for a restart in place, any
 * connection could take its port as a source port and the restarted component would fail with "address already
 * in use" (seen when the API server was restarted during a burst).
 */
const LOW = 20_000;
const HIGH = 32_000;

function onePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    srv.on("error", () => resolve(0)); // taken: the caller tries another
    srv.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** `count` distinct free ports on 127.0.0.1 from the same low range (for local processes beside the cluster, e.g. the benchmark's). */
export async function freePorts(count: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < count) {
    const p = await onePort();
    if (p !== 0) out.add(p);
  }
  return [...out];
}

/** Distinct free ports on 127.0.0.1 (free at the time of the call). */
export async function pickPorts(): Promise<Ports> {
  const seen = new Set<number>();
  const next = async (): Promise<number> => {
    for (;;) {
      const p = await onePort();
      if (p !== 0 && !seen.has(p)) {
        seen.add(p);
        return p;
      }
    }
  };
  return {
    etcdClient: await next(),
    etcdPeer: await next(),
    apiserver: await next(),
    controllerManager: await next(),
    scheduler: await next(),
    kwok: await next(),
  };
}
