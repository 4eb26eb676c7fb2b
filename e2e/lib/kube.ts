/**
 * Typed API clients for the local test cluster.
 *
 *   const k = await kubeClients();            // starts the cluster if needed (ensureCluster)
 *   await k.core.listNamespacedPod({ namespace });
 *   const sa = await kubeClientsForToken(tok); // same cluster, authenticated as a bearer token
 */
import {
  ApiException,
  AppsV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  ApiextensionsV1Api,
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  StorageV1Api,
  PolicyV1Api,
} from "@kubernetes/client-node";
import { ensureCluster } from "../cluster/cluster.ts";

/** KubernetesObjectApi that can also tell whether a kind is namespaced (via discovery). */
export class ObjectApi extends KubernetesObjectApi {
  async isNamespaced(apiVersion: string, kind: string): Promise<boolean> {
    const r = await this.resource(apiVersion, kind);
    if (!r) throw new Error(`unknown kind ${kind} in ${apiVersion} (CRD not installed?)`);
    return r.namespaced;
  }
}

export interface KubeClients {
  kubeconfigPath: string | undefined;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  rbac: RbacAuthorizationV1Api;
  storage: StorageV1Api;
  authn: AuthenticationV1Api;
  authz: AuthorizationV1Api;
  coordination: CoordinationV1Api;
  policy: PolicyV1Api;
  apiext: ApiextensionsV1Api;
  custom: CustomObjectsApi;
  /** Generic CRUD/apply for any kind (used by applyYaml). */
  objects: ObjectApi;
}

export function clientsFor(kc: KubeConfig, kubeconfigPath?: string): KubeClients {
  return {
    kubeconfigPath,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
    storage: kc.makeApiClient(StorageV1Api),
    authn: kc.makeApiClient(AuthenticationV1Api),
    authz: kc.makeApiClient(AuthorizationV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
    policy: kc.makeApiClient(PolicyV1Api),
    apiext: kc.makeApiClient(ApiextensionsV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    objects: kc.makeApiClient(ObjectApi),
  };
}

let cached: Promise<KubeClients> | undefined;

/** Admin (system:masters) clients for the local cluster; starts it when it is not running. Memoized per process. */
export function kubeClients(): Promise<KubeClients> {
  cached ??= ensureCluster().then(({ kubeconfigPath }) => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    return clientsFor(kc, kubeconfigPath);
  });
  cached.catch(() => (cached = undefined));
  return cached;
}

/** Clients for the same cluster authenticated with a bearer token (e.g. from TokenRequest). */
export async function kubeClientsForToken(token: string, user = "token-user"): Promise<KubeClients> {
  const admin = await kubeClients();
  const cluster = admin.kc.getCurrentCluster();
  if (!cluster) throw new Error("admin kubeconfig has no current cluster");
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  });
  return clientsFor(kc);
}

/** HTTP status of a failed API call (undefined for non-API errors). */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** Returns undefined instead of throwing on 404. */
export async function ignoreNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw err;
  }
}
