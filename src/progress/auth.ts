/**
 * Who may report progress for a FineTuneJob: a projected service-account token
 * whose audience names the job (checked by the API server's TokenReview) and
 * that is bound to a running training pod of that job (checked against the
 * pod cache). Results are cached briefly so a trainer reporting every few
 * seconds costs one TokenReview a minute, not one per report.
 */
import { createHash } from "node:crypto";
import type { V1Pod, V1TokenReview } from "@kubernetes/client-node";
import type { KubeClient } from "../kube/client.ts";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../api/group.ts";
import { progressAudience } from "../render/names.ts";

export type AuthResult = { ok: true } | { ok: false; status: 401 | 403; reason: string };

export interface PodLookup {
  pod(namespace: string, name: string): V1Pod | undefined;
}

const POD_NAME_CLAIM = "authentication.kubernetes.io/pod-name";
const POD_UID_CLAIM = "authentication.kubernetes.io/pod-uid";

export class ProgressAuthenticator {
  readonly #client: KubeClient;
  readonly #pods: PodLookup;
  readonly #cache = new Map<string, { result: AuthResult; until: number }>();
  readonly #ttlMs: number;
  #tokenReviews = 0;

  constructor(client: KubeClient, pods: PodLookup, ttlMs = 60_000) {
    this.#client = client;
    this.#pods = pods;
    this.#ttlMs = ttlMs;
  }

  get tokenReviews(): number {
    return this.#tokenReviews;
  }

  async authenticate(token: string, namespace: string, name: string): Promise<AuthResult> {
    const key = createHash("sha256").update(`${namespace}/${name}\n${token}`).digest("hex");
    const hit = this.#cache.get(key);
    if (hit && hit.until > Date.now()) return hit.result;
    const result = await this.#review(token, namespace, name);
    // Cache refusals too (briefly), so a misbehaving client cannot turn each request into a TokenReview.
    this.#cache.set(key, { result, until: Date.now() + (result.ok ? this.#ttlMs : 5_000) });
    if (this.#cache.size > 10_000) this.#cache.clear();
    return result;
  }

  async #review(token: string, namespace: string, name: string): Promise<AuthResult> {
    const audience = progressAudience({ namespace, name });
    this.#tokenReviews++;
    const review = await this.#client.request<V1TokenReview>("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: [audience] } },
    });
    const st = review.status;
    if (!st?.authenticated) return { ok: false, status: 401, reason: `token rejected${st?.error ? `: ${st.error}` : ""}` };
    if (!st.audiences?.includes(audience)) return { ok: false, status: 401, reason: "token audience does not name this FineTuneJob" };
    const username = st.user?.username ?? "";
    if (!username.startsWith(`system:serviceaccount:${namespace}:`))
      return { ok: false, status: 403, reason: "token is not a service account of the job's namespace" };
    const podName = st.user?.extra?.[POD_NAME_CLAIM]?.[0];
    const podUid = st.user?.extra?.[POD_UID_CLAIM]?.[0];
    if (!podName) return { ok: false, status: 403, reason: "token is not bound to a pod" };
    const pod = this.#pods.pod(namespace, podName);
    if (!pod || pod.metadata?.uid !== podUid) return { ok: false, status: 403, reason: `pod ${podName} is unknown` };
    if (pod.metadata?.labels?.[LABEL_JOB_NAME] !== name || pod.metadata?.labels?.[LABEL_STAGE] !== "train") {
      return { ok: false, status: 403, reason: `pod ${podName} is not a training pod of ${namespace}/${name}` };
    }
    return { ok: true };
  }
}
