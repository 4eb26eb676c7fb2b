import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { accessFromKubeconfig, inClusterAccess, resolveAccess, SERVICE_ACCOUNT_DIR, type FileSystem } from "./access.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "ctx",
    contexts: [
      { name: "other", context: { cluster: "nope", user: "nope" } },
      { name: "ctx", context: { cluster: "c", user: "u" } },
    ],
    clusters: [{ name: "c", cluster }],
    users: [{ name: "u", user }],
  });
}

function files(map: Record<string, string>): FileSystem {
  return {
    exists: (p) => p in map,
    read: (p) => {
      if (!(p in map)) throw Object.assign(new Error(`ENOENT ${p}`), { code: "ENOENT" });
      return map[p]!;
    },
  };
}

describe("accessFromKubeconfig", () => {
  it("reads inline CA, client certificate and key of the current context", () => {
    const r = accessFromKubeconfig(
      kubeconfig(
        { server: "https://10.0.0.1:6443/", "certificate-authority-data": b64("CA") },
        { "client-certificate-data": b64("CERT"), "client-key-data": b64("KEY") },
      ),
      "/home/u/.kube/config",
    );
    assert.equal(r.kind, "direct");
    if (r.kind !== "direct") return;
    assert.deepEqual(r.access, {
      source: "/home/u/.kube/config (context ctx)",
      server: "https://10.0.0.1:6443",
      ca: { data: "CA" },
      clientCert: { data: "CERT" },
      clientKey: { data: "KEY" },
    });
  });

  it("resolves file paths against the kubeconfig's directory; token, tokenFile, basic, skip-verify, server name", () => {
    const r = accessFromKubeconfig(
      kubeconfig(
        { server: "https://h:1", "certificate-authority": "ca.crt", "insecure-skip-tls-verify": true, "tls-server-name": "kubernetes" },
        { tokenFile: "/abs/token", "client-certificate": "certs/c.crt", "client-key": "/k.key", username: "admin", password: "pw" },
      ),
      "/etc/kube/config",
    );
    assert.equal(r.kind, "direct");
    if (r.kind !== "direct") return;
    assert.deepEqual(r.access.ca, { file: "/etc/kube/ca.crt" });
    assert.deepEqual(r.access.token, { file: "/abs/token" });
    assert.deepEqual(r.access.clientCert, { file: "/etc/kube/certs/c.crt" });
    assert.deepEqual(r.access.clientKey, { file: "/k.key" });
    assert.deepEqual(r.access.basic, { username: "admin", password: "pw" });
    assert.equal(r.access.insecureSkipTLSVerify, true);
    assert.equal(r.access.tlsServerName, "kubernetes");
    const inline = accessFromKubeconfig(kubeconfig({ server: "https://h:1" }, { token: "abc", tokenFile: "/ignored" }), "/c");
    assert.ok(inline.kind === "direct" && "data" in inline.access.token! && inline.access.token.data === "abc");
  });

  it("leaves exec plugins, auth providers, proxies and impersonation to client-node", () => {
    for (const [cluster, user, what] of [
      [{ server: "https://h" }, { exec: { command: "aws" } }, /exec/],
      [{ server: "https://h" }, { "auth-provider": { name: "oidc" } }, /auth-provider/],
      [{ server: "https://h", "proxy-url": "socks5://p:1080" }, { token: "t" }, /proxy-url/],
      [{ server: "https://h" }, { token: "t", as: "someone" }, /\bas\b/],
    ] as const) {
      const r = accessFromKubeconfig(kubeconfig(cluster, user), "/c");
      assert.equal(r.kind, "fallback");
      assert.match(r.kind === "fallback" ? r.reason : "", what);
    }
    assert.equal(accessFromKubeconfig("current-context: x\n", "/c").kind, "fallback");
    assert.equal(accessFromKubeconfig(": : :\n\t- [", "/c").kind, "fallback");
  });
});

describe("resolveAccess (loadFromDefault order)", () => {
  const cfg = kubeconfig({ server: "https://k:6443" }, { token: "t" });

  it("$KUBECONFIG first, then ~/.kube/config, then the service account", () => {
    const fs = files({ "/x/cfg": cfg, "/home/me/.kube/config": cfg.replace("k:6443", "home:6443"), [`${SERVICE_ACCOUNT_DIR}/token`]: "sa" });
    const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
    const a = resolveAccess({ ...env, KUBECONFIG: "/x/cfg" }, fs, "/home/me");
    assert.ok(a.kind === "direct" && a.access.server === "https://k:6443");
    const b = resolveAccess(env, fs, "/home/me");
    assert.ok(b.kind === "direct" && b.access.server === "https://home:6443");
    const c = resolveAccess(env, fs, "/nobody");
    assert.ok(c.kind === "direct" && c.access.source === "in-cluster" && c.access.server === "https://10.96.0.1:443");
    assert.equal(resolveAccess({}, files({}), "/nobody").kind, "fallback");
    assert.equal(resolveAccess({ KUBECONFIG: "/a:/b" }, fs, "/home/me").kind, "fallback");
  });

  it("in-cluster: IPv6 hosts in brackets, plain http on the usual insecure ports, token and CA from files", () => {
    assert.equal(inClusterAccess({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" })?.server, "https://[fd00::1]:443");
    assert.equal(inClusterAccess({ KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "8080" })?.server, "http://h:8080");
    assert.deepEqual(inClusterAccess({ KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "6443" }, "/sa")?.token, { file: "/sa/token" });
    assert.equal(inClusterAccess({}), undefined);
  });
});
