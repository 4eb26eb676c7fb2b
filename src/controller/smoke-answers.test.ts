import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import type { V1ConfigMap, V1Pod } from "@kubernetes/client-node";
import { LABEL_ATTEMPT, LABEL_STAGE } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";
import { MAX_SMOKE_ANSWERS_BYTES, renderSmokeAnswersConfigMap } from "../render/smoke-answers.ts";
import { parseSmokeAnswersLog, recordSmokeAnswers, type SmokeAnswersDeps } from "./smoke-answers.ts";

/** The last lines of a real smoke pod's log: axolotl 0.18.0 inference on the tiny model (e2e/axolotl/smoke.test.ts). */
const REAL_LOG = readFileSync(new URL("./testdata/axolotl-0.18.0-smoke-pod.log", import.meta.url), "utf8");
const REAL_PROMPTS = ["Add 2 and 3.", "Name a colour."];

const ftj = {
  apiVersion: "finetune.dev/v1alpha1",
  kind: "FineTuneJob",
  metadata: { name: "j", namespace: "ns", uid: "u1" },
  spec: {},
} as unknown as FineTuneJobObject;
const judged = (answers: Array<{ prompt: string; answer: string; stopped?: boolean }>): FineTuneJobObject["status"] =>
  ({
    stages: { smoke: { phase: "Succeeded", attempt: 1, retries: 0 } },
    smokeTest: { result: "Passed", message: "ok", answers },
  }) as FineTuneJobObject["status"];
const smokePod = (attempt: number, phase = "Succeeded"): V1Pod => ({
  metadata: { name: `j-smoke-${attempt}-x`, labels: { [LABEL_STAGE]: "smoke", [LABEL_ATTEMPT]: String(attempt) }, creationTimestamp: new Date(0) },
  status: { phase },
});

function deps(over: Partial<SmokeAnswersDeps> & { log?: string; pods?: V1Pod[] } = {}) {
  const created: V1ConfigMap[] = [];
  const logReads: string[] = [];
  const d: SmokeAnswersDeps = {
    configMap: () => undefined,
    podsOf: () => over.pods ?? [smokePod(1)],
    readPodLogTail: async (_ns, name) => {
      logReads.push(name);
      if (over.log === undefined) throw new Error("no log");
      return over.log;
    },
    create: async (cm) => void created.push(cm),
    ...over,
  };
  return { d, created, logReads };
}

describe("smoke-test answers: the launcher's log line", () => {
  it("reads every answer in full from a real smoke pod's log", () => {
    const rec = parseSmokeAnswersLog(REAL_LOG);
    assert.ok(rec, "the FINETUNE_SMOKE_ANSWERS line is in the real log");
    assert.deepEqual(
      rec.answers.map((a) => a.prompt),
      REAL_PROMPTS,
    );
    assert.equal(typeof rec.eosToken, "string");
    for (const a of rec.answers) assert.equal(typeof a.stopped, "boolean");
  });

  it("skips a line cut short (limitBytes) and a log without the line", () => {
    const line = REAL_LOG.split("\n").find((l) => l.startsWith("FINETUNE_SMOKE_ANSWERS "))!;
    assert.equal(parseSmokeAnswersLog(`${line.slice(0, line.length - 5)}\n`), undefined);
    assert.equal(parseSmokeAnswersLog(REAL_LOG.replaceAll("FINETUNE_SMOKE_ANSWERS ", "")), undefined);
    assert.deepEqual(parseSmokeAnswersLog(`${line}\n${line.slice(0, 40)}\n`)?.answers.length, REAL_PROMPTS.length, "the newest complete line wins");
  });
});

describe("smoke-test answers: the ConfigMap", () => {
  it("copies the answers in full from the judged attempt's pod log", async () => {
    const { d, created, logReads } = deps({ log: REAL_LOG, pods: [smokePod(0), smokePod(1), smokePod(1, "Failed")] });
    assert.deepEqual(await recordSmokeAnswers(ftj, judged([{ prompt: "cut", answer: "cut" }]), d), { source: "pod-log" });
    assert.deepEqual(logReads, ["j-smoke-1-x"]);
    assert.equal(created.length, 1);
    const cm = created[0]!;
    assert.equal(cm.metadata?.name, "j-smoke-answers");
    assert.equal(cm.metadata?.ownerReferences?.[0]?.uid, "u1");
    assert.equal(cm.data?.source, "pod-log");
    const data = JSON.parse(cm.data!["answers.json"]!) as { answers: Array<{ prompt: string; answer: string }> };
    assert.deepEqual(data.answers, parseSmokeAnswersLog(REAL_LOG)!.answers);
  });

  it("falls back to status's cut answers, marked, when the pod or its log is gone", async () => {
    for (const over of [{ pods: [] }, { log: "no marker here\n" }, {}]) {
      const { d, created } = deps(over);
      assert.deepEqual(await recordSmokeAnswers(ftj, judged([{ prompt: "p", answer: "a", stopped: true }]), d), { source: "status-truncated" });
      assert.equal(created[0]!.data?.source, "status-truncated");
      assert.deepEqual(JSON.parse(created[0]!.data!["answers.json"]!).answers, [{ prompt: "p", answer: "a", stopped: true }]);
    }
  });

  it("does nothing before the verdict, without answers, or when the ConfigMap is already there", async () => {
    const cases: Array<[FineTuneJobObject["status"], Partial<SmokeAnswersDeps>]> = [
      [{}, {}],
      [judged([]), {}],
      [judged([{ prompt: "p", answer: "a" }]), { configMap: () => ({ metadata: { name: "j-smoke-answers" } }) }],
    ];
    for (const [status, over] of cases) {
      const { d, created, logReads } = deps({ log: REAL_LOG, ...over });
      assert.equal(await recordSmokeAnswers(ftj, status, d), undefined);
      assert.deepEqual([created.length, logReads.length], [0, 0]);
    }
  });

  it("bounds a runaway answer well under the 1 MiB ConfigMap limit", () => {
    const huge = "é".repeat(600_000);
    const cm = renderSmokeAnswersConfigMap(
      { name: "j", namespace: "ns", uid: "u" },
      0,
      {
        answers: [
          { prompt: "p", answer: huge },
          { prompt: "q", answer: "short" },
        ],
      },
      "pod-log",
    );
    assert.ok(Buffer.byteLength(cm.data!["answers.json"]!) <= MAX_SMOKE_ANSWERS_BYTES + 1024);
    const answers = JSON.parse(cm.data!["answers.json"]!).answers as Array<{ answer: string; truncatedFrom?: number }>;
    assert.equal(answers[0]!.truncatedFrom, 600_000);
    assert.deepEqual(answers[1], { prompt: "q", answer: "short" });
  });
});
