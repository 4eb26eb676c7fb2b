/**
 * Where the API server is and how to prove who we are, resolved the way
 * client-node's `KubeConfig.loadFromDefault()` does ($KUBECONFIG, then
 * ~/.kube/config, then the in-cluster service account), but only for the
 * plain cases the lean transport serves itself: a server URL, a CA, a bearer
 * token (inline or file), a client certificate and key (inline or file), basic
 * auth, insecure-skip-tls-verify. Anything else (exec plugins, auth providers,
 * proxies, impersonation, several merged kubeconfig files, no config at all)
 * resolves to `{ kind: "fallback" }`, and the caller loads client-node's
 * KubeConfig for it: the library stays the source for the hard cases.
 *
 * Pure apart from the `FileSystem` seam, so every branch is unit-tested.
 */
import { isIPv6 } from "node:net";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** One source of PEM or token bytes: inline, or a file read again when credentials are refreshed. */
export type Secret = { data: string } | { file: string };

export interface ClusterAccess {
  /** Where this came from, for the start-up log: a kubeconfig path + context, or "in-cluster". */
  source: string;
  /** https://host:port (or http:// for a plain local server). */
  server: string;
  ca?: Secret;
  insecureSkipTLSVerify?: boolean;
  tlsServerName?: string;
  token?: Secret;
  clientCert?: Secret;
  clientKey?: Secret;
  basic?: { username: string; password: string };
}

export type AccessResolution = { kind: "direct"; access: ClusterAccess } | { kind: "fallback"; reason: string };

export interface FileSystem {
  exists(path: string): boolean;
  read(path: string): string;
}

interface NamedCluster {
  name?: string;
  cluster?: Record<string, unknown>;
}
interface NamedUser {
  name?: string;
  user?: Record<string, unknown>;
}
interface NamedContext {
  name?: string;
  context?: { cluster?: string; user?: string };
}
interface KubeconfigFile {
  "current-context"?: string;
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
}

/** Keys of a kubeconfig user that the lean transport can serve; any other set key means "let client-node do it". */
const USER_KEYS = new Set(["token", "tokenFile", "client-certificate", "client-certificate-data", "client-key", "client-key-data", "username", "password"]);
const CLUSTER_KEYS = new Set([
  "server",
  "certificate-authority",
  "certificate-authority-data",
  "insecure-skip-tls-verify",
  "tls-server-name",
  "disable-compression",
  "extensions",
]);

/** The access of one kubeconfig file's current context. `dir` anchors relative file paths (kubectl's rule). */
export function accessFromKubeconfig(text: string, path: string): AccessResolution {
  let doc: KubeconfigFile;
  try {
    doc = (parse(text) ?? {}) as KubeconfigFile;
  } catch (err) {
    return { kind: "fallback", reason: `kubeconfig ${path} does not parse here (${String(err).split("\n")[0]})` };
  }
  const contextName = doc["current-context"];
  const context = doc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) return { kind: "fallback", reason: `kubeconfig ${path} has no current context` };
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === context.user)?.user ?? {};
  if (!cluster || typeof cluster.server !== "string") return { kind: "fallback", reason: `kubeconfig ${path}: context ${contextName} has no cluster server` };
  const odd = [
    ...Object.keys(cluster).filter((k) => !CLUSTER_KEYS.has(k) && cluster[k] != null),
    ...Object.keys(user).filter((k) => !USER_KEYS.has(k) && user[k] != null),
  ];
  if (odd.length > 0) return { kind: "fallback", reason: `kubeconfig ${path}: ${odd.join(", ")} need client-node` };
  const dir = dirname(path);
  const file = (v: unknown): Secret | undefined => (typeof v === "string" && v ? { file: isAbsolute(v) ? v : join(dir, v) } : undefined);
  const b64 = (v: unknown): Secret | undefined => (typeof v === "string" && v ? { data: Buffer.from(v, "base64").toString("utf8") } : undefined);
  const str = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);
  const ca = b64(cluster["certificate-authority-data"]) ?? file(cluster["certificate-authority"]);
  const token = str(user.token) !== undefined ? { data: user.token as string } : file(user.tokenFile);
  const clientCert = b64(user["client-certificate-data"]) ?? file(user["client-certificate"]);
  const clientKey = b64(user["client-key-data"]) ?? file(user["client-key"]);
  const username = str(user.username);
  const tlsServerName = str(cluster["tls-server-name"]);
  return {
    kind: "direct",
    access: {
      source: `${path} (context ${contextName})`,
      server: (cluster.server as string).replace(/\/+$/, ""),
      ...(ca ? { ca } : {}),
      ...(cluster["insecure-skip-tls-verify"] === true ? { insecureSkipTLSVerify: true } : {}),
      ...(tlsServerName ? { tlsServerName } : {}),
      ...(token ? { token } : {}),
      ...(clientCert ? { clientCert } : {}),
      ...(clientKey ? { clientKey } : {}),
      ...(username ? { basic: { username, password: str(user.password) ?? "" } } : {}),
    },
  };
}

/** The pod's service account, as client-node's loadFromCluster builds it (http for the usual plain ports). */
export function inClusterAccess(env: NodeJS.ProcessEnv, dir = SERVICE_ACCOUNT_DIR): ClusterAccess | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
  return {
    source: "in-cluster",
    server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    ca: { file: `${dir}/ca.crt` },
    token: { file: `${dir}/token` },
  };
}

/** client-node's loadFromDefault order: $KUBECONFIG (first file; several merged ones go to client-node), ~/.kube/config, in-cluster. */
export function resolveAccess(env: NodeJS.ProcessEnv, fs: FileSystem, home: string | undefined): AccessResolution {
  const files = (env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
  if (files.length > 1) return { kind: "fallback", reason: "KUBECONFIG names several files (merged by client-node)" };
  const path = files[0] ?? (home && fs.exists(join(home, ".kube", "config")) ? join(home, ".kube", "config") : undefined);
  if (path) return accessFromKubeconfig(fs.read(path), path);
  if (fs.exists(`${SERVICE_ACCOUNT_DIR}/token`)) {
    const access = inClusterAccess(env);
    if (access) return { kind: "direct", access };
  }
  return { kind: "fallback", reason: "no kubeconfig and no service account" };
}
