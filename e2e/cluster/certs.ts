/**
 * PKI for the local control plane, generated with the openssl CLI (EC P-256 keys: fast).
 *
 * One CA signs the apiserver serving cert and every client cert. Client identity is
 * the cert subject: CN = user, O = group (system:masters for admin-like clients).
 * The service-account token key pair is separate (sa.key / sa.pub).
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ClientCertSpec {
  /** File stem: certs/<name>.crt, certs/<name>.key */
  name: string;
  user: string;
  groups: string[];
}

/** Clients of the apiserver. kwok, the provisioner and the apiserver's kubelet client are masters: they are test harness, not subjects under test. */
export const clientCerts: ClientCertSpec[] = [
  { name: "admin", user: "kubernetes-admin", groups: ["system:masters"] },
  { name: "kube-controller-manager", user: "system:kube-controller-manager", groups: [] },
  { name: "kube-scheduler", user: "system:kube-scheduler", groups: [] },
  { name: "kwok", user: "kwok-controller", groups: ["system:masters"] },
  { name: "provisioner", user: "finetune-hostpath-provisioner", groups: ["system:masters"] },
  { name: "apiserver-kubelet-client", user: "kube-apiserver-kubelet-client", groups: ["system:masters"] },
  // The apiserver's aggregation-layer proxy identity (requestheader auth); no kubeconfig.
  { name: "front-proxy-client", user: "front-proxy-client", groups: [] },
];

const apiserverSANs = [
  "IP:127.0.0.1",
  "IP:10.0.0.1",
  "DNS:localhost",
  "DNS:kubernetes",
  "DNS:kubernetes.default",
  "DNS:kubernetes.default.svc",
  "DNS:kubernetes.default.svc.cluster.local",
];

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr ?? e.message}`);
  }
}

async function ecKey(dir: string, name: string): Promise<void> {
  await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`], dir);
}

async function signedCert(dir: string, name: string, subject: string, ext: string): Promise<void> {
  await ecKey(dir, name);
  await openssl(["req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`], dir);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "3650",
      "-sha256",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ],
    dir,
  );
}

function subjectOf(spec: ClientCertSpec): string {
  return spec.groups.map((g) => `/O=${g}`).join("") + `/CN=${spec.user}`;
}

/** ca.key and a self-signed ca.crt (ten years) under `dir`: the root every other certificate here is signed by. */
async function selfSignedCa(dir: string, commonName: string): Promise<void> {
  await ecKey(dir, "ca");
  const ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"];
  await openssl(["req", "-x509", "-new", "-key", "ca.key", "-subj", `/CN=${commonName}`, "-days", "3650", "-sha256", ...ext, "-out", "ca.crt"], dir);
}

/**
 * A CA and one serving certificate signed by it (ca.crt, serving.crt, serving.key under `dir`), for a local
 * webhook server that the API server calls by URL (the benchmark's Kubeflow processes).
 */
export async function generateServingPki(dir: string, sans: string[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await selfSignedCa(dir, "finetune-bench-webhook-ca");
  await signedCert(
    dir,
    "serving",
    "/CN=127.0.0.1",
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(",")}\n`,
  );
}

/** Generates everything under `dir` (which must be empty or absent). */
export async function generatePki(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await selfSignedCa(dir, "finetune-test-ca");
  const serverExt = `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${apiserverSANs.join(",")}\n`;
  const clientExt = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
  // The CA serial file is shared, so sign sequentially; key generation is the slow part and runs in parallel.
  await signedCert(dir, "apiserver", "/CN=kube-apiserver", serverExt);
  await Promise.all([ecKey(dir, "sa"), ...clientCerts.map((c) => ecKey(dir, c.name))]);
  await openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  for (const c of clientCerts) {
    await openssl(["req", "-new", "-key", `${c.name}.key`, "-subj", subjectOf(c), "-out", `${c.name}.csr`], dir);
    await writeFile(join(dir, `${c.name}.ext`), clientExt);
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        `${c.name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        `${c.name}.ext`,
        "-out",
        `${c.name}.crt`,
      ],
      dir,
    );
  }
}

export interface ClientCredentials {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export async function readClientCredentials(certDir: string, name: string): Promise<ClientCredentials> {
  const [ca, cert, key] = await Promise.all([
    readFile(join(certDir, "ca.crt")),
    readFile(join(certDir, `${name}.crt`)),
    readFile(join(certDir, `${name}.key`)),
  ]);
  return { ca, cert, key };
}
