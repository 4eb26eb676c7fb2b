/**
 * The command line of each control-plane component, derived only from the state
 * dir's layout and ports.json. Because nothing here depends on the moment of the
 * first start, a single component can be started again later (restart in place)
 * with the same data, ports and certificates.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { KWOK_NODE_ANNOTATION } from "./manifests.ts";
import { binaryPath, clusterSrcDir, type Layout } from "./paths.ts";
import type { Ports } from "./ports.ts";
import type { Component } from "./processes.ts";

export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

/** Names accepted by `npm run cluster:restart -- NAME` (short forms of the component names). */
export const restartAliases: Record<string, Component> = {
  etcd: "etcd",
  apiserver: "kube-apiserver",
  "kube-apiserver": "kube-apiserver",
  "controller-manager": "kube-controller-manager",
  "kube-controller-manager": "kube-controller-manager",
  scheduler: "kube-scheduler",
  "kube-scheduler": "kube-scheduler",
  kwok: "kwok",
  provisioner: "provisioner",
};

/** Kubeconfig of a component's client certificate (admin's is the user-facing one). */
export function componentKubeconfig(l: Layout, certName: string): string {
  return certName === "admin" ? l.kubeconfig : join(l.config, `${certName}.kubeconfig`);
}

export function auditPolicyPath(l: Layout): string {
  return join(l.config, "audit-policy.yaml");
}

export function componentCommand(l: Layout, ports: Ports, name: Component): { command: string; args: string[] } {
  const cert = (n: string) => join(l.certs, n);
  switch (name) {
    case "etcd":
      return {
        command: binaryPath("etcd"),
        args: [
          "--name=default",
          `--data-dir=${l.etcdData}`,
          `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
          `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
          `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
          `--initial-cluster=default=http://127.0.0.1:${ports.etcdPeer}`,
          // Ignored by etcd once the data dir holds a member, so a restart keeps the data.
          "--initial-cluster-state=new",
          "--unsafe-no-fsync=true",
          "--quota-backend-bytes=4294967296",
          "--log-level=warn",
        ],
      };
    case "kube-apiserver": {
      // Auditing was chosen at the first start (FINETUNE_CLUSTER_AUDIT_USERS); the policy file records it.
      const policy = auditPolicyPath(l);
      const auditFlags = existsSync(policy)
        ? [
            `--audit-policy-file=${policy}`,
            `--audit-log-path=${l.auditLog}`,
            "--audit-log-format=json",
            "--audit-log-maxsize=4096",
            "--audit-log-maxbackup=1",
            "--audit-log-mode=blocking",
          ]
        : [];
      return {
        command: binaryPath("kube-apiserver"),
        args: [
          `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${ports.apiserver}`,
          `--cert-dir=${join(l.certs, "apiserver-generated")}`,
          `--tls-cert-file=${cert("apiserver.crt")}`,
          `--tls-private-key-file=${cert("apiserver.key")}`,
          `--client-ca-file=${cert("ca.crt")}`,
          "--service-cluster-ip-range=10.0.0.0/24",
          `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
          `--service-account-key-file=${cert("sa.pub")}`,
          `--service-account-signing-key-file=${cert("sa.key")}`,
          "--authorization-mode=Node,RBAC",
          "--allow-privileged=true",
          `--kubelet-client-certificate=${cert("apiserver-kubelet-client.crt")}`,
          `--kubelet-client-key=${cert("apiserver-kubelet-client.key")}`,
          "--kubelet-preferred-address-types=InternalIP",
          // Request-header auth (aggregation layer); also what controller-manager/scheduler look up for delegated authn.
          `--requestheader-client-ca-file=${cert("ca.crt")}`,
          "--requestheader-allowed-names=front-proxy-client",
          "--requestheader-username-headers=X-Remote-User",
          "--requestheader-group-headers=X-Remote-Group",
          "--requestheader-extra-headers-prefix=X-Remote-Extra-",
          `--proxy-client-cert-file=${cert("front-proxy-client.crt")}`,
          `--proxy-client-key-file=${cert("front-proxy-client.key")}`,
          // Loopback addresses are not valid Endpoints, so do not publish the kubernetes service endpoints.
          "--endpoint-reconciler-type=none",
          "--max-requests-inflight=800",
          "--max-mutating-requests-inflight=400",
          "--profiling=false",
          ...auditFlags,
          "--v=1",
        ],
      };
    }
    case "kube-controller-manager": {
      const kc = componentKubeconfig(l, "kube-controller-manager");
      return {
        command: binaryPath("kube-controller-manager"),
        args: [
          `--kubeconfig=${kc}`,
          `--authentication-kubeconfig=${kc}`,
          `--authorization-kubeconfig=${kc}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${ports.controllerManager}`,
          `--cert-dir=${join(l.certs, "kcm-generated")}`,
          "--leader-elect=false",
          `--root-ca-file=${cert("ca.crt")}`,
          `--service-account-private-key-file=${cert("sa.key")}`,
          "--use-service-account-credentials=true",
          `--cluster-signing-cert-file=${cert("ca.crt")}`,
          `--cluster-signing-key-file=${cert("ca.key")}`,
          "--service-cluster-ip-range=10.0.0.0/24",
          "--kube-api-qps=200",
          "--kube-api-burst=400",
          "--concurrent-job-syncs=10",
          "--v=1",
        ],
      };
    }
    case "kube-scheduler": {
      const kc = componentKubeconfig(l, "kube-scheduler");
      return {
        command: binaryPath("kube-scheduler"),
        args: [
          `--config=${join(l.config, "kube-scheduler.yaml")}`,
          `--authentication-kubeconfig=${kc}`,
          `--authorization-kubeconfig=${kc}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${ports.scheduler}`,
          `--cert-dir=${join(l.certs, "scheduler-generated")}`,
          "--v=1",
        ],
      };
    }
    case "kwok":
      return {
        command: binaryPath("kwok"),
        args: [
          `--kubeconfig=${componentKubeconfig(l, "kwok")}`,
          `--config=${join(l.config, "kwok.yaml")}`,
          "--manage-all-nodes=false",
          `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
          "--node-ip=127.0.0.1",
          `--node-port=${ports.kwok}`,
          `--server-address=127.0.0.1:${ports.kwok}`,
          "--cidr=10.244.0.1/16",
          "--enable-crds=Logs",
          "--node-lease-duration-seconds=40",
        ],
      };
    case "provisioner":
      return { command: process.execPath, args: [join(clusterSrcDir, "provisioner.ts"), l.root] };
  }
}
