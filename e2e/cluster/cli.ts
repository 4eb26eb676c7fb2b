/**
 * npm run cluster:up | cluster:down | cluster:status | cluster:kubeconfig
 *
 *   up          start the local control plane (builds binaries on first use); no-op when healthy;
 *               on a degraded cluster it restarts only the components that are down, keeping the data
 *   restart C   restart one component in place (same etcd data, ports, certificates):
 *               apiserver | etcd | controller-manager | scheduler | kwok | provisioner
 *   down        stop every process it started and delete the state dir
 *   status      component pids/health, ports, nodes; exit 0 only when healthy
 *   kubeconfig  print ONLY the admin kubeconfig path:  KUBECONFIG=$(npm run -s cluster:kubeconfig) kubectl get nodes
 *
 * State dir: ~/.cache/finetune-operator/cluster (FINETUNE_CLUSTER_DIR overrides).
 */
import { existsSync } from "node:fs";
import { down, kubeconfigPath, restart, restartAliases, stateDir, status, up } from "./cluster.ts";

const out = (s: string) => process.stdout.write(s + "\n");
const log = (s: string) => process.stderr.write(`[cluster] ${s}\n`);

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case "up": {
      const t0 = Date.now();
      const r = await up({ log });
      if (r.restarted) {
        out(`cluster repaired in place in ${r.startSeconds.toFixed(1)}s; restarted: ${r.restarted.join(", ") || "(none, it recovered)"}`);
      } else if (r.alreadyRunning) {
        out(`cluster already running and healthy (started ${r.startedAt})`);
      } else {
        if (r.buildSeconds !== undefined) out(`cold build of control-plane binaries took ${r.buildSeconds.toFixed(0)}s`);
        out(`cluster started in ${r.startSeconds.toFixed(1)}s (${((Date.now() - t0) / 1000).toFixed(1)}s total)`);
      }
      out(`apiserver:  ${r.server}`);
      out(`kubeconfig: ${r.kubeconfigPath}`);
      out(`nodes:      ${r.nodes.join(", ")}`);
      out(`state dir:  ${r.stateDir}`);
      return 0;
    }
    case "restart": {
      const name = process.argv[3];
      const component = name === undefined ? undefined : restartAliases[name];
      if (!component) {
        process.stderr.write(
          `usage: npm run cluster:restart -- ${Object.keys(restartAliases)
            .filter((a) => !a.startsWith("kube-"))
            .join("|")}\n`,
        );
        return 2;
      }
      const t0 = Date.now();
      const r = await restart(component, { log });
      out(`${component} restarted in place (pid ${r.pid}) in ${((Date.now() - t0) / 1000).toFixed(1)}s; ports unchanged: ${JSON.stringify(r.ports)}`);
      return 0;
    }
    case "down": {
      const r = await down({ log });
      out(r.stopped.length ? `stopped ${r.stopped.length} process(es); removed ${stateDir()}` : `nothing was running; removed ${stateDir()}`);
      return 0;
    }
    case "status": {
      const s = await status();
      out(
        `cluster:    ${s.healthy ? "running (healthy)" : s.running ? "DEGRADED (some components down or unhealthy; run cluster:up to restart)" : "not running"}`,
      );
      out(`state dir:  ${s.stateDir}`);
      if (s.server) out(`apiserver:  ${s.server}`);
      if (s.kubeconfigPath) out(`kubeconfig: ${s.kubeconfigPath}`);
      if (s.nodesReady) out(`nodes:      ${s.nodesReady}`);
      if (s.ports) out(`ports:      ${JSON.stringify(s.ports)}`);
      for (const c of s.components)
        out(
          `  ${c.name.padEnd(24)} ${c.pid === undefined ? "stopped" : `pid ${c.pid}`.padEnd(12)} ${c.pid === undefined ? "" : c.healthy ? "healthy" : "UNHEALTHY"}`,
        );
      return s.healthy ? 0 : 1;
    }
    case "kubeconfig": {
      const path = kubeconfigPath();
      if (!existsSync(path)) {
        log(`no kubeconfig at ${path}: the cluster is not running (npm run cluster:up)`);
        return 1;
      }
      out(path);
      return 0;
    }
    default:
      process.stderr.write("usage: node e2e/cluster/cli.ts up|restart COMPONENT|down|status|kubeconfig\n");
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
