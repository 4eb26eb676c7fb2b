/**
 * Tiny dynamic PV provisioner for the local cluster (started by `up`, stopped by `down`).
 *
 * Usage: node e2e/cluster/provisioner.ts <state-dir>
 *
 * Watches PVCs; for an unbound, pending PVC whose StorageClass has provisioner
 * `finetune.dev/hostpath` it creates a hostPath PV under <state-dir>/volumes with
 * the claim's capacity, access modes (RWO/RWX/ROX/RWOP), volume mode and a claimRef,
 * so the controller-manager's PV binder binds them at once. WaitForFirstConsumer
 * classes are honoured (waits for the scheduler's selected-node annotation and pins
 * the PV to that node). PVCs with storageClassName "" or another class are ignored.
 * Watches PVs; a Released PV it provisioned with reclaimPolicy Delete is deleted
 * together with its directory.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Api, ApiError } from "./api.ts";
import { readClientCredentials } from "./certs.ts";
import { PROVISIONER_NAME } from "./manifests.ts";
import { layout } from "./paths.ts";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = {
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string>; deletionTimestamp?: string };
  [k: string]: any;
};

const root = resolve(process.argv[2] ?? "");
if (!process.argv[2]) {
  console.error("usage: provisioner.ts <state-dir>");
  process.exit(2);
}
const l = layout(root);
const ports = JSON.parse(await readFile(l.portsFile, "utf8")) as { apiserver: number };
const api = new Api(`https://127.0.0.1:${ports.apiserver}`, await readClientCredentials(l.certs, "provisioner"));

const log = (msg: string, extra?: unknown) =>
  console.log(
    JSON.stringify({ time: new Date().toISOString(), msg, ...(extra === undefined ? {} : { detail: extra instanceof Error ? extra.message : extra }) }),
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const PROVISIONED_BY = "pv.kubernetes.io/provisioned-by";
const SELECTED_NODE = "volume.kubernetes.io/selected-node";

/** StorageClasses by name, kept by a watch: one GET per claim event was the provisioner's whole cost under a burst. */
const storageClasses = new Map<string, Obj>();

function storageClassOf(pvc: Obj): Obj | undefined {
  const name: string | undefined = pvc["spec"]?.storageClassName;
  if (!name) return undefined; // "" means no dynamic provisioning; absent means no default class existed at creation
  return storageClasses.get(name);
}

/** Claims (by uid) whose PV this process created: the claim's later events (annotations, binding) need nothing more. */
const provisioned = new Set<string>();

async function provision(pvc: Obj): Promise<void> {
  const spec = pvc["spec"] ?? {};
  if (pvc.metadata.deletionTimestamp || spec.volumeName || (pvc["status"]?.phase ?? "Pending") !== "Pending") return;
  if (provisioned.has(pvc.metadata.uid ?? "")) return;
  if (spec.dataSource || spec.dataSourceRef) log("ignoring dataSource (not supported)", `${pvc.metadata.namespace}/${pvc.metadata.name}`);
  const sc = storageClassOf(pvc);
  if (!sc || sc["provisioner"] !== PROVISIONER_NAME) return;
  const selectedNode = pvc.metadata.annotations?.[SELECTED_NODE];
  if (sc["volumeBindingMode"] === "WaitForFirstConsumer" && !selectedNode) return;

  const name = `pvc-${pvc.metadata.uid}`;
  const dir = join(l.volumes, name);
  await mkdir(dir, { recursive: true, mode: 0o777 });
  const pv = {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: {
      name,
      annotations: { [PROVISIONED_BY]: PROVISIONER_NAME },
      labels: { "finetune.dev/provisioner": "hostpath" },
    },
    spec: {
      capacity: { storage: spec.resources?.requests?.storage ?? "1Gi" },
      accessModes: spec.accessModes ?? ["ReadWriteOnce"],
      volumeMode: spec.volumeMode ?? "Filesystem",
      persistentVolumeReclaimPolicy: sc["reclaimPolicy"] ?? "Delete",
      storageClassName: sc.metadata.name,
      ...(sc["mountOptions"] ? { mountOptions: sc["mountOptions"] } : {}),
      hostPath: { path: dir, type: "DirectoryOrCreate" },
      claimRef: {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        namespace: pvc.metadata.namespace,
        name: pvc.metadata.name,
        uid: pvc.metadata.uid,
      },
      ...(selectedNode
        ? {
            nodeAffinity: {
              required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [selectedNode] }] }] },
            },
          }
        : {}),
    },
  };
  try {
    await api.request("POST", "/api/v1/persistentvolumes", pv);
    provisioned.add(pvc.metadata.uid ?? "");
    log("provisioned", {
      pv: name,
      claim: `${pvc.metadata.namespace}/${pvc.metadata.name}`,
      accessModes: pv.spec.accessModes,
      capacity: pv.spec.capacity.storage,
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      provisioned.add(pvc.metadata.uid ?? "");
      return;
    }
    throw err;
  }
}

async function reclaim(pv: Obj): Promise<void> {
  if (pv.metadata.annotations?.[PROVISIONED_BY] !== PROVISIONER_NAME || pv.metadata.deletionTimestamp) return;
  if (pv["status"]?.phase !== "Released" || pv["spec"]?.persistentVolumeReclaimPolicy !== "Delete") return;
  const path: string | undefined = pv["spec"]?.hostPath?.path;
  if (path && resolve(path).startsWith(l.volumes + "/")) await rm(path, { recursive: true, force: true });
  try {
    await api.request("DELETE", `/api/v1/persistentvolumes/${encodeURIComponent(pv.metadata.name)}`);
    log("deleted released volume", { pv: pv.metadata.name });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
}

/**
 * Runs at most `limit` handlers at once, one at a time per object: events of one claim stay in order while a burst
 * of claims is provisioned in parallel (the watch is never blocked behind the API calls of a handler).
 */
function perObjectQueue(limit: number) {
  const chains = new Map<string, Promise<void>>();
  let running = 0;
  const waiting: Array<() => void> = [];
  const slot = async () => {
    if (running >= limit) await new Promise<void>((r) => waiting.push(r));
    running++;
  };
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  return (key: string, work: () => Promise<void>): Promise<void> => {
    const next = (chains.get(key) ?? Promise.resolve()).then(async () => {
      await slot();
      try {
        await work();
      } finally {
        release();
      }
    });
    chains.set(key, next);
    void next.then(() => {
      if (chains.get(key) === next) chains.delete(key);
    });
    return next;
  };
}

/** List-then-watch loop that survives watch expiry and apiserver restarts. Resolves once the first list was handled. */
function informer(
  path: string,
  handle: (obj: Obj) => Promise<void>,
  opts: { concurrency: number; onDelete?: (obj: Obj) => void } = { concurrency: 16 },
): Promise<void> {
  const { promise: listed, resolve: firstList } = Promise.withResolvers<void>();
  const enqueue = perObjectQueue(opts.concurrency);
  const safe = async (obj: Obj) => {
    try {
      await handle(obj);
    } catch (err) {
      log(`handler failed for ${obj.metadata.namespace ?? ""}/${obj.metadata.name}`, err);
      // Retry once shortly after (e.g. a transient apiserver error).
      setTimeout(() => void handle(obj).catch((e) => log("retry failed", e)), 1000);
    }
  };
  const dispatch = (obj: Obj) => enqueue(obj.metadata.uid ?? `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`, () => safe(obj));
  void (async () => {
    for (;;) {
      try {
        const list = await api.get<{ items: Obj[]; metadata: { resourceVersion: string } }>(path);
        await Promise.all(list.items.map(dispatch));
        firstList();
        let rv = list.metadata.resourceVersion;
        for (;;) {
          rv = await api.watch<Obj>(path, rv, (ev) => {
            if (ev.type === "ADDED" || ev.type === "MODIFIED") void dispatch(ev.object);
            else if (ev.type === "DELETED") opts.onDelete?.(ev.object);
          });
        }
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 410)) {
          log(`watch ${path} failed; relisting`, err);
          await sleep(1000);
        }
      }
    }
  })();
  return listed;
}

/** StorageClasses into the map above. */
const keepStorageClass = async (sc: Obj) => void storageClasses.set(sc.metadata.name, sc);

await informer("/apis/storage.k8s.io/v1/storageclasses", keepStorageClass, {
  concurrency: 1,
  onDelete: (sc) => storageClasses.delete(sc.metadata.name),
});
await Promise.all([informer("/api/v1/persistentvolumeclaims", provision), informer("/api/v1/persistentvolumes", reclaim)]);
await mkdir(l.pids, { recursive: true });
await writeFile(join(l.pids, "provisioner.ready"), `${process.pid}\n`);
log("ready", { provisioner: PROVISIONER_NAME, volumes: l.volumes });
process.on("SIGTERM", () => process.exit(0));
