/**
 * The few kustomize features that Kubeflow Trainer's and JobSet's release trees use,
 * read from their module directories, so that the benchmark installs the objects
 * their releases install without a kustomize binary:
 *   resources (files and sub-directories, depth first; remote URLs are dropped and reported),
 *   namespace, namePrefix, commonLabels / labels (metadata only),
 *   patches: JSON 6902 lists (add / replace / remove) aimed by a target's kind and name, and
 *   strategic-merge patches, which here only touch Deployments and CRD conversion: both are
 *   replaced by the benchmark anyway, so those are skipped and reported.
 * Generators (configMapGenerator, secretGenerator) make objects the benchmark provides
 * itself (config files and certificates), so they are skipped too.
 * Inner kustomizations are transformed first, then the outer one, as kustomize does.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Obj = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; [k: string]: any };
  [k: string]: any;
};

export interface Kustomized {
  objects: Obj[];
  /** What was left out and why (remote resources, strategic-merge patches, generators). */
  skipped: string[];
}

/** Kinds that are cluster-scoped in the trees we read: `namespace` does not apply to them. */
const CLUSTER_SCOPED = new Set([
  "Namespace",
  "CustomResourceDefinition",
  "ClusterRole",
  "ClusterRoleBinding",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
  "ClusterTrainingRuntime",
  "PriorityClass",
  "StorageClass",
]);
/** kustomize does not prefix these names (their names are fixed by their content or are global). */
const NO_PREFIX = new Set(["CustomResourceDefinition", "Namespace"]);
const BINDINGS = new Set(["RoleBinding", "ClusterRoleBinding"]);

export function isClusterScoped(kind: string | undefined): boolean {
  return kind !== undefined && CLUSTER_SCOPED.has(kind);
}

function kustomizationFile(dir: string): string | undefined {
  for (const f of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    try {
      if (statSync(join(dir, f)).isFile()) return join(dir, f);
    } catch {
      /* next name */
    }
  }
  return undefined;
}

function readDocs(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, "utf8"))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && typeof o === "object" && typeof o.kind === "string");
}

/** Reads the kustomization in `dir` (recursively) into objects. */
export function kustomize(dir: string): Kustomized {
  const file = kustomizationFile(dir);
  if (!file) throw new Error(`no kustomization in ${dir}`);
  const k = (parse(readFileSync(file, "utf8")) ?? {}) as Record<string, any>;
  const skipped: string[] = [];
  let objects: Obj[] = [];
  for (const r of (k.resources ?? []) as string[]) {
    if (/^[a-z]+:\/\//.test(r)) {
      skipped.push(`remote resource ${r} (${dir})`);
      continue;
    }
    const path = join(dir, r);
    if (statSync(path).isDirectory()) {
      const inner = kustomize(path);
      objects.push(...inner.objects);
      skipped.push(...inner.skipped);
    } else objects.push(...readDocs(path));
  }
  for (const g of ["configMapGenerator", "secretGenerator"]) if (k[g]) skipped.push(`${g} (${dir})`);
  for (const p of (k.patches ?? k.patchesStrategicMerge ?? []) as Array<Record<string, any> | string>) {
    const patchPath = typeof p === "string" ? p : p.path;
    const body = typeof p === "string" ? undefined : (p.patch ?? (patchPath ? readFileSync(join(dir, patchPath), "utf8") : undefined));
    if (body === undefined) continue;
    const parsed = parse(body) as unknown;
    if (Array.isArray(parsed) && typeof p !== "string" && p.target) {
      objects = objects.map((o) => (matchesTarget(o, p.target) ? applyJsonPatch(o, parsed as JsonPatchOp[]) : o));
    } else skipped.push(`strategic-merge patch ${patchPath ?? "(inline)"} (${dir})`);
  }
  objects = transform(objects, {
    ...(k.namespace ? { namespace: k.namespace as string } : {}),
    ...(k.namePrefix ? { namePrefix: k.namePrefix as string } : {}),
    labels: { ...(k.commonLabels ?? {}), ...Object.assign({}, ...((k.labels ?? []) as Array<{ pairs?: Record<string, string> }>).map((l) => l.pairs ?? {})) },
  });
  return { objects, skipped };
}

export interface Transform {
  namespace?: string;
  namePrefix?: string;
  labels?: Record<string, string>;
}

/**
 * namespace, namePrefix and labels over a list of objects (new objects; inputs untouched). Bindings follow:
 * their ServiceAccount subjects get the namespace, and their roleRef and subjects the prefix, as kustomize's
 * name references do.
 */
export function transform(objects: readonly Obj[], t: Transform): Obj[] {
  const prefix = t.namePrefix ?? "";
  const prefixed = new Set(objects.filter((o) => !NO_PREFIX.has(o.kind ?? "")).map((o) => `${o.kind}/${o.metadata?.name}`));
  return objects.map((src) => {
    const o = structuredClone(src);
    o.metadata ??= {};
    if (prefix && !NO_PREFIX.has(o.kind ?? "")) o.metadata.name = prefix + (o.metadata.name ?? "");
    if (t.namespace && !isClusterScoped(o.kind)) o.metadata.namespace = t.namespace;
    if (t.labels && Object.keys(t.labels).length > 0) o.metadata.labels = { ...(o.metadata.labels ?? {}), ...t.labels };
    if (BINDINGS.has(o.kind ?? "")) {
      if (prefix && o.roleRef?.name && prefixed.has(`${o.roleRef.kind}/${o.roleRef.name}`)) o.roleRef.name = prefix + o.roleRef.name;
      for (const s of (o.subjects ?? []) as Array<{ kind: string; name: string; namespace?: string }>) {
        if (s.kind !== "ServiceAccount") continue;
        if (prefix && prefixed.has(`ServiceAccount/${s.name}`)) s.name = prefix + s.name;
        if (t.namespace) s.namespace = t.namespace;
      }
    }
    return o;
  });
}

export interface JsonPatchOp {
  op: "add" | "replace" | "remove";
  path: string;
  value?: unknown;
}

function matchesTarget(o: Obj, target: Record<string, string>): boolean {
  return (!target.kind || target.kind === o.kind) && (!target.name || target.name === o.metadata?.name);
}

/** RFC 6902 add / replace / remove (array index or "-" for add) on a copy of `o`. */
export function applyJsonPatch(o: Obj, ops: readonly JsonPatchOp[]): Obj {
  const out = structuredClone(o);
  for (const op of ops) {
    const keys = op.path
      .split("/")
      .slice(1)
      .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = keys.pop();
    if (last === undefined) throw new Error(`bad patch path ${op.path}`);
    let parent: any = out;
    for (const key of keys) {
      parent = parent?.[Array.isArray(parent) ? Number(key) : key];
      if (parent === undefined) throw new Error(`patch path ${op.path} does not exist in ${o.kind}/${o.metadata?.name}`);
    }
    if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : Number(last);
      if (op.op === "add") parent.splice(i, 0, op.value);
      else if (op.op === "replace") parent[i] = op.value;
      else parent.splice(i, 1);
    } else if (op.op === "remove") delete parent[last];
    else parent[last] = op.value;
  }
  return out;
}
