/**
 * Per-test namespaces.
 *
 *   test('x', async (t) => {
 *     const ns = await freshNamespace('gc', { t });   // deleted after the test (t.after)
 *     ...
 *   });
 *   await withNamespace('pvc', async (ns, k) => { ... }); // deleted when fn settles
 *
 * Set FINETUNE_E2E_KEEP_NAMESPACES=1 to keep them for debugging.
 */
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import { ignoreNotFound, kubeClients, type KubeClients } from "./kube.ts";
import { waitFor } from "./wait.ts";

export const TEST_NAMESPACE_LABEL = "e2e.finetune.dev/test";

export interface TestNamespace {
  name: string;
  /** Deletes the namespace (background; does not wait for it to finish terminating). */
  cleanup(): Promise<void>;
}

/**
 * Creates `<prefix>-<random>` and waits until its default ServiceAccount exists
 * (pods cannot be created before that). With `t`, cleanup is registered via t.after.
 */
export async function freshNamespace(prefix = "e2e", opts: { t?: TestContext; clients?: KubeClients } = {}): Promise<TestNamespace> {
  const k = opts.clients ?? (await kubeClients());
  const base = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, 50)
    .replace(/-+$/, "");
  const name = `${base}-${randomBytes(3).toString("hex")}`;
  await k.core.createNamespace({ body: { metadata: { name, labels: { [TEST_NAMESPACE_LABEL]: "true" } } } });
  const ns: TestNamespace = {
    name,
    async cleanup() {
      if (process.env["FINETUNE_E2E_KEEP_NAMESPACES"] === "1") return;
      await ignoreNotFound(k.core.deleteNamespace({ name, propagationPolicy: "Background" }));
    },
  };
  opts.t?.after(() => ns.cleanup());
  await waitFor(
    `default ServiceAccount in namespace ${name}`,
    () => ignoreNotFound(k.core.readNamespacedServiceAccount({ name: "default", namespace: name })),
    {
      timeoutMs: 30_000,
      intervalMs: 100,
    },
  );
  return ns;
}

/** Runs `fn` in a fresh namespace and deletes the namespace afterwards (also on failure). */
export async function withNamespace<T>(prefix: string, fn: (namespace: string, clients: KubeClients) => Promise<T>): Promise<T> {
  const k = await kubeClients();
  const ns = await freshNamespace(prefix, { clients: k });
  try {
    return await fn(ns.name, k);
  } finally {
    await ns.cleanup();
  }
}
