/**
 * Leader election on its own thread (src/runtime/elector-thread.ts, src/lease-worker.ts) against the real API
 * server: a main thread blocked far longer than the renew deadline keeps the Lease, and a Lease lost while the main
 * thread is blocked ends the process (it cannot stop acting in time, so the worker kills it).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { KubeClient } from "../src/kube/client.ts";
import { freshNamespace, kubeClients, waitFor, type KubeClients, type TestNamespace } from "./lib/index.ts";

const HOST = new URL("./fixtures/elector-host.ts", import.meta.url).pathname;

let k: KubeClients;
let testNs: TestNamespace;

before(async () => {
  k = await kubeClients();
  testNs = await freshNamespace("elector-thread", { clients: k });
});
after(async () => testNs?.cleanup());

function host(lease: string, busySeconds: number) {
  const child = spawn(process.execPath, ["--no-warnings", HOST, testNs.name, lease, "host", String(busySeconds)], {
    env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { output: () => out, exited };
}

const renewTime = async (lease: string) => String((await k.coordination.readNamespacedLease({ namespace: testNs.name, name: lease })).spec?.renewTime ?? "");

describe("leader election on its own thread (real API server)", () => {
  it("a main thread blocked for 6 lease durations keeps the Lease: the worker renews throughout", async () => {
    const h = host("blocked", 24);
    await waitFor("the host to lead", () => h.output().includes("STARTED"), { timeoutMs: 180_000 });
    // While the main thread spins, the Lease is renewed again and again (a renewal every 0.5 s; 3 s would lose it).
    const seen = new Set<string>();
    await waitFor(
      "renewals while the main thread is blocked",
      async (note) => {
        seen.add(await renewTime("blocked"));
        note(`${seen.size} distinct renewTimes; host: ${h.output()}`);
        return seen.size >= 6 && !h.output().includes("BUSY-DONE") ? true : h.output().includes("BUSY-DONE") ? "busy ended first" : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    ).then((r) => assert.equal(r, true, `the Lease was renewed during the block (${seen.size} renewTimes)`));
    const { code } = await h.exited;
    assert.match(h.output(), /BUSY-DONE\nLEADING=true\n/, h.output());
    assert.doesNotMatch(h.output(), /STOPPED=lost/);
    assert.equal(code, 0);
  });

  it("a Lease taken over while the main thread is blocked ends the process before the main thread can act again", async () => {
    const h = host("taken", 60);
    await waitFor("the host to lead", () => h.output().includes("STARTED"), { timeoutMs: 180_000 });
    // Another holder writes itself into the Lease (as a successor would after an expiry).
    const kc = await KubeClient.fromEnvironment({ ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" });
    await kc.request("PATCH", `/apis/coordination.k8s.io/v1/namespaces/${testNs.name}/leases/taken`, {
      body: { spec: { holderIdentity: "someone-else" } },
      contentType: "application/merge-patch+json",
    });
    kc.close();
    const { signal } = await h.exited;
    assert.equal(signal, "SIGKILL", `killed by its election thread; output: ${h.output()}`);
    assert.doesNotMatch(h.output(), /BUSY-DONE/, "the blocked main thread never got to run again");
  });
});
