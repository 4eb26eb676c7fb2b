/**
 * A model repository served on loopback the way the Hugging Face Hub serves one, for the parts `huggingface_hub`
 * (and so transformers and Axolotl) use to download a model: this machine cannot reach the Hub, and the test must
 * see a real `snapshot_download` fill the shared cache. Pods point at it with HF_ENDPOINT, as an air-gapped cluster
 * points at its Hub mirror.
 *
 *   GET  /api/models/<org>/<name>[/revision/<rev>]   repo info: commit sha and file list
 *   GET  /api/models/<org>/<name>/tree/<rev>[/<dir>]  a folder's files (transformers looks for chat templates)
 *   HEAD /<org>/<name>/resolve/<rev>/<file>          metadata: X-Repo-Commit, ETag, Content-Length
 *   GET  /<org>/<name>/resolve/<rev>/<file>          the file
 *
 * Every request is recorded, so a test can tell a download from a cache hit.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, relative } from "node:path";

export interface LocalHub {
  url: string;
  sha: string;
  requests: string[];
  close(): Promise<void>;
}

function files(root: string, dir = root): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(root, path) : [relative(root, path)];
  });
}

export async function serveRepo(repoId: string, repoFolder: string): Promise<LocalHub> {
  const names = files(repoFolder).sort();
  const digest = createHash("sha1");
  const etags = new Map<string, string>();
  for (const name of names) {
    const sum = createHash("sha256")
      .update(readFileSync(join(repoFolder, name)))
      .digest("hex");
    etags.set(name, sum);
    digest.update(`${name}:${sum}\n`);
  }
  const sha = digest.digest("hex");
  const requests: string[] = [];
  const info = JSON.stringify({
    id: repoId,
    modelId: repoId,
    sha,
    private: false,
    gated: false,
    disabled: false,
    siblings: names.map((rfilename) => ({ rfilename })),
  });
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? "").split("?")[0]!);
    requests.push(`${req.method} ${path}`);
    if (path === `/api/models/${repoId}` || path.startsWith(`/api/models/${repoId}/revision/`)) {
      res.writeHead(200, { "Content-Type": "application/json" }).end(info);
      return;
    }
    const tree = `/api/models/${repoId}/tree/`;
    if (path.startsWith(tree)) {
      // tree/<rev>[/<folder>]: the folder's entries; a folder that does not exist is EntryNotFound, as on the Hub.
      const rest = path.slice(tree.length);
      const folder = rest.includes("/") ? `${rest.slice(rest.indexOf("/") + 1).replace(/\/+$/, "")}/` : "";
      const entries = names
        .filter((n) => n.startsWith(folder))
        .map((n) => ({ type: "file", path: n, size: statSync(join(repoFolder, n)).size, oid: etags.get(n) }));
      if (folder && entries.length === 0) res.writeHead(404, { "X-Error-Code": "EntryNotFound" }).end("Entry not found");
      else res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(entries));
      return;
    }
    const prefix = `/${repoId}/resolve/`;
    if (path.startsWith(prefix)) {
      const rest = path.slice(prefix.length);
      const name = rest.slice(rest.indexOf("/") + 1);
      const etag = etags.get(name);
      if (etag) {
        const body = readFileSync(join(repoFolder, name));
        res.writeHead(200, { "X-Repo-Commit": sha, ETag: `"${etag}"`, "Content-Length": body.length, "Content-Type": "application/octet-stream" });
        res.end(req.method === "HEAD" ? undefined : body);
        return;
      }
      res.writeHead(404, { "X-Error-Code": "EntryNotFound" }).end("Entry not found");
      return;
    }
    res.writeHead(404, { "X-Error-Code": "RepoNotFound" }).end("Repository not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}`, sha, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
