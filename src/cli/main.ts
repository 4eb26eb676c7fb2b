/**
 * kubectl-finetune: submit a plain Axolotl config as a FineTuneJob and watch
 * it train. Errors are one clear line and an exit code, never a stack trace.
 */
import { parseArgs } from "node:util";
import { STAGES, type Stage } from "../api/group.ts";
import { errorMessage } from "../kube/errors.ts";
import type { ClusterClient } from "./cluster.ts";
import { CliError, nameFromFile, readDocuments, wrapConfig } from "./documents.ts";
import { runPlan } from "./plan.ts";
import { runRender } from "./render.ts";
import { runValidateAll } from "./validate.ts";

const CLUSTER_COMMANDS = new Set(["submit", "status", "watch", "logs", "list", "delete", "chat"]);

const USAGE = `Usage: kubectl finetune COMMAND [options]

Commands:
  validate PATH...              check Axolotl configs or FineTuneJob manifests (files, or folders of *.yml/*.yaml),
      [--nodes N --gpus-per-node G] [--image I]   one verdict line per file; exit 0 all valid, 1 any invalid, 2 any unreadable
  render FILE                   print the Kubernetes objects the operator would create
  plan CONFIG                   GPU memory per GPU and host RAM the run needs; exit 0 fits, 1 does not fit
      --nodes N --gpus-per-node G [--gpu-memory 80Gi] [--host-memory 256Gi] [--params 8B]
  submit CONFIG.yml             wrap a plain Axolotl config into a FineTuneJob and create it
      --nodes N --gpus-per-node G [--name NAME] [--image IMAGE] [--dry-run=client -o yaml|json]
  status NAME                   phase, stage, attempt, progress, checkpoint, outputs, last failure
  watch NAME                    live progress until the job ends; exit 0 only on Succeeded
  logs NAME [--stage preprocess|train|smoke|merge] [--rank N] [--attempt N] [-f]
  list                          FineTuneJobs in the namespace
  delete NAME                   delete a FineTuneJob (output data kept unless its policy says Delete)
  chat NAME [--merged] [--port 7860]   Axolotl's Gradio UI on the adapter (or merged model) in a short-lived pod,
                                port-forwarded here; the pod is deleted when the command ends

Cluster options (like kubectl): --kubeconfig PATH, --context NAME, -n/--namespace NS`;

const OPTIONS = {
  nodes: { type: "string" },
  "gpus-per-node": { type: "string" },
  name: { type: "string" },
  image: { type: "string" },
  "dry-run": { type: "string" },
  output: { type: "string", short: "o" },
  stage: { type: "string" },
  rank: { type: "string" },
  attempt: { type: "string" },
  follow: { type: "boolean", short: "f" },
  namespace: { type: "string", short: "n" },
  context: { type: "string" },
  kubeconfig: { type: "string" },
  interval: { type: "string" },
  timeout: { type: "string" },
  "gpu-memory": { type: "string" },
  "host-memory": { type: "string" },
  params: { type: "string" },
  merged: { type: "boolean" },
  port: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`--${flag} must be a non-negative integer, got "${value}"`, 2);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, arg] = positionals;
  if (values.help || !command) {
    out(USAGE);
    return command || values.help ? 0 : 2;
  }
  const need = (what: string) => {
    if (!arg) throw new CliError(`${command}: missing ${what}\n\n${USAGE}`, 2);
    return arg;
  };
  const nodes = positiveInt(values.nodes, "nodes", 1);
  const gpusPerNode = positiveInt(values["gpus-per-node"], "gpus-per-node", 1);
  // client-node is loaded only by commands that talk to a cluster: validate and render stay quick and work offline.
  const { ClusterClient, list, logs, remove, status, submit, watch } = CLUSTER_COMMANDS.has(command ?? "")
    ? await import("./cluster.ts")
    : ({} as typeof import("./cluster.ts"));
  const cluster = (): ClusterClient =>
    new ClusterClient({
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
      ...(values.context ? { context: values.context } : {}),
      ...(values.namespace ? { namespace: values.namespace } : {}),
    });
  switch (command) {
    case "validate":
      need("PATH");
      // A plain config has no shape: say so when the flags do not give one.
      return runValidateAll(
        positionals.slice(1),
        {
          nodes,
          gpusPerNode,
          shapeAssumed: values.nodes === undefined && values["gpus-per-node"] === undefined,
          ...(values.image ? { image: values.image } : {}),
        },
        out,
      );
    case "render": {
      const file = need("FILE");
      return runRender(
        file,
        {
          name: values.name ?? nameFromFile(file),
          nodes,
          gpusPerNode,
          ...(values.namespace ? { namespace: values.namespace } : {}),
          ...(values.image ? { image: values.image } : {}),
        },
        (t) => process.stdout.write(t),
      );
    }
    case "plan":
      return runPlan(
        need("CONFIG"),
        {
          nodes,
          gpusPerNode,
          ...(values["gpu-memory"] ? { gpuMemory: values["gpu-memory"] } : {}),
          ...(values["host-memory"] ? { hostMemory: values["host-memory"] } : {}),
          ...(values.params ? { params: values.params } : {}),
        },
        out,
      );
    case "submit": {
      const file = need("CONFIG.yml");
      const docs = readDocuments(file);
      if (docs.length !== 1) throw new CliError(`${file}: expected exactly one document, found ${docs.length}`, 1);
      const doc = docs[0]!;
      const dryRun = values["dry-run"] !== undefined;
      if (dryRun && values["dry-run"] !== "client") throw new CliError(`--dry-run must be "client"`, 2);
      const client = dryRun ? undefined : cluster();
      const namespace = values.namespace ?? client?.namespace;
      const manifest =
        doc.kind === "FineTuneJob"
          ? (doc.value as Record<string, unknown>)
          : wrapConfig(doc.value, {
              name: values.name ?? nameFromFile(file),
              nodes,
              gpusPerNode,
              ...(namespace ? { namespace } : {}),
              ...(values.image ? { image: values.image } : {}),
            });
      return submit(client, manifest, { dryRun, ...(values.output ? { output: values.output } : {}) }, out);
    }
    case "status":
      return status(cluster(), need("NAME"), out);
    case "watch":
      return watch(
        cluster(),
        need("NAME"),
        {
          intervalMs: positiveInt(values.interval, "interval", 2) * 1000,
          tty: process.stdout.isTTY === true,
          ...(values.timeout ? { timeoutMs: positiveInt(values.timeout, "timeout", 0) * 1000 } : {}),
        },
        out,
        (s) => process.stdout.write(s),
      );
    case "logs": {
      const stage = values.stage as Stage | undefined;
      if (stage && !STAGES.includes(stage)) throw new CliError(`--stage must be one of ${STAGES.join(", ")}`, 2);
      return logs(
        cluster(),
        need("NAME"),
        {
          ...(stage ? { stage } : {}),
          rank: positiveInt(values.rank, "rank", 0),
          follow: values.follow === true,
          ...(values.attempt ? { attempt: positiveInt(values.attempt, "attempt", 0) } : {}),
        },
        process.stdout,
      );
    }
    case "list":
      return list(cluster(), out);
    case "delete":
      return remove(cluster(), need("NAME"), out);
    case "chat": {
      const { chat } = await import("./chat.ts");
      const port = positiveInt(values.port, "port", 7860);
      return chat(
        cluster(),
        need("NAME"),
        {
          merged: values.merged === true,
          localPort: port,
          ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
          ...(values.context ? { context: values.context } : {}),
        },
        out,
      );
    }
    default:
      throw new CliError(`unknown command "${command}"\n\n${USAGE}`, 2);
  }
}

if (import.meta.main) {
  // `kubectl finetune render x | head`: a closed pipe ends the output quietly, like other CLI tools.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    const code =
      err instanceof CliError
        ? err.exitCode
        : (err as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
          ? 2
          : 1;
    process.stderr.write(`error: ${err instanceof CliError ? err.message : errorMessage(err)}\n`);
    process.exitCode = code;
  }
}
