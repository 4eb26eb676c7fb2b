/**
 * Installing the operator the way its chart/manifests do, without a container
 * engine: the CRD applied as plain JSON, a kubeconfig for its ServiceAccount,
 * and the Deployment container's environment for a local process. Shared by
 * the chart-install e2e suite and the benchmark's system under test.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Deployment, type V1EnvVar } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { FIELD_MANAGER } from "./apply.ts";
import type { KubeClients } from "./kube.ts";
import { waitFor } from "./wait.ts";

/** Server-side applies a CRD and waits until it is Established. */
export async function applyCrdObject(k: KubeClients, crd: KubernetesObject): Promise<void> {
  // Plain JSON through CustomObjectsApi: client-node's typed serializer (KubernetesObjectApi) drops the
  // schema's x-kubernetes-* keys (kubernetes-client/javascript #2384) and the API server rejects the rest.
  await k.custom.patchClusterCustomObject(
    {
      group: "apiextensions.k8s.io",
      version: "v1",
      plural: "customresourcedefinitions",
      name: crd.metadata!.name!,
      body: crd,
      fieldManager: FIELD_MANAGER,
      force: true,
    },
    setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
  );
  await waitFor("FineTuneJob CRD established", async () => {
    const got = await k.apiext.readCustomResourceDefinition({ name: crd.metadata!.name! });
    return got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
  });
}

/**
 * Writes a kubeconfig at `path` that authenticates as `namespace/serviceAccount` with a TokenRequest token
 * against the cluster `k` talks to. Returns the token and the user name the API server will see.
 */
export async function writeServiceAccountKubeconfig(
  k: KubeClients,
  path: string,
  namespace: string,
  serviceAccount: string,
  expirationSeconds: number,
): Promise<{ token: string; user: string }> {
  const { status } = await k.core.createNamespacedServiceAccountToken({ namespace, name: serviceAccount, body: { spec: { expirationSeconds } } });
  const token = status!.token!;
  const cluster = k.kc.getCurrentCluster()!;
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString("base64") : undefined);
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  writeFileSync(
    path,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "local", cluster: { server: cluster.server, ...(ca ? { "certificate-authority-data": ca } : { "insecure-skip-tls-verify": true }) } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: "operator", context: { cluster: "local", user, namespace } }],
      "current-context": "operator",
    }),
    { mode: 0o600 },
  );
  return { token, user };
}

/**
 * node's flags in the Deployment's container args (the image's entrypoint is node): everything before the program,
 * which must be dist/main.js.
 */
export function deploymentNodeFlags(deployment: V1Deployment): string[] {
  const args = deployment.spec?.template.spec?.containers[0]?.args ?? [];
  if (args.at(-1) !== "dist/main.js") throw new Error(`the Deployment's args must end with the program dist/main.js, got ${JSON.stringify(args)}`);
  return args.slice(0, -1);
}

/**
 * The runtime stage's `ENV` of a Dockerfile (after its last FROM), one `ENV KEY=value` per line as ours writes them:
 * the environment the image gives the operator before the Deployment's own. NODE_ENV=production, for one, turns off
 * the informers' deep freeze (a development guard against mutating the cache).
 */
export function imageEnv(dockerfile: string): Record<string, string> {
  const lines = dockerfile.split("\n");
  const runtime = lines.slice(lines.findLastIndex((l) => /^FROM\s/i.test(l)) + 1);
  const env: Record<string, string> = {};
  for (const line of runtime) {
    const m = /^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)\s*$/i.exec(line);
    if (m) env[m[1]!] = m[2]!;
    else if (/^ENV\s/i.test(line)) throw new Error(`Dockerfile: write ENV as one KEY=value per line, got ${JSON.stringify(line)}`);
  }
  return env;
}

/** The environment the Deployment's container would get, with the downward API resolved for a pod of that name. */
export function deploymentEnv(deployment: V1Deployment, pod: { name: string; namespace: string }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (deployment.spec?.template.spec?.containers[0]?.env ?? []) as V1EnvVar[]) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (field === "metadata.name") env[e.name] = pod.name;
    else if (field === "metadata.namespace") env[e.name] = pod.namespace;
    else throw new Error(`env ${e.name}: cannot resolve ${JSON.stringify(e.valueFrom)} outside a pod`);
  }
  return env;
}
