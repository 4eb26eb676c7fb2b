/**
 * The smoke test's checks, from the summary the launcher wrote (pure). The
 * Axolotl guide's advice after training: try the adapter with a quick
 * inference before merging. What can be judged without knowing the task:
 *  - an empty answer (the adapter learned to say nothing, or EOS comes first);
 *  - every generation running to the token limit, never emitting EOS: the
 *    EOS-token mismatch the guide describes (`special_tokens: eos_token`).
 */
import type { FineTuneJobSpec, FineTuneJobStatus } from "../api/schema.ts";
import type { LauncherSummary } from "./failures.ts";
import { GENERAL_HINTS } from "./hints.ts";
import { Reason } from "./reasons.ts";

type SmokeStatus = NonNullable<FineTuneJobStatus["smokeTest"]>;

/** Answers in status are cut here (the full text is in the answers file on the claim). */
const MAX_ANSWER_CHARS = 200;
const MAX_PROMPT_CHARS = 100;

export interface SmokeVerdict {
  /** Condition/Event reason: SmokeTestPassed, SmokeTestEmptyAnswer, SmokeTestNoEOS, SmokeTestNoAnswers. */
  reason: Reason;
  status: Omit<SmokeStatus, "answersFile">;
}

export function assessSmokeTest(smoke: LauncherSummary["smoke"], action: FineTuneJobSpec["smokeTest"]["action"]): SmokeVerdict {
  const bad = (reason: Reason, message: string, answers: SmokeStatus["answers"], hint?: string): SmokeVerdict => ({
    reason,
    status: { result: action === "Fail" ? "Failed" : "Warning", message, ...(hint ? { hint } : {}), answers },
  });
  if (!smoke || smoke.answers.length === 0) {
    return bad(Reason.SmokeTestNoAnswers, "the smoke test finished without reporting any answer (no launcher summary in the pod's termination message)", []);
  }
  const answers = smoke.answers.slice(0, 8).map((a) => ({
    prompt: cut(a.prompt, MAX_PROMPT_CHARS),
    answer: cut(a.answer, MAX_ANSWER_CHARS),
    ...(typeof a.stopped === "boolean" ? { stopped: a.stopped } : {}),
  }));
  const empty = smoke.answers.filter((a) => a.answer.trim() === "").length;
  if (empty > 0) {
    return bad(
      Reason.SmokeTestEmptyAnswer,
      `${empty} of ${smoke.answers.length} smoke-test prompt(s) got an empty answer`,
      answers,
      `An adapter that answers nothing often ends every turn at once: ${GENERAL_HINTS.eosMismatch}`,
    );
  }
  if (smoke.answers.every((a) => a.stopped === false)) {
    return bad(
      Reason.SmokeTestNoEOS,
      `every smoke-test generation (${smoke.answers.length}) ran to the token limit without an EOS token`,
      answers,
      GENERAL_HINTS.eosMismatch,
    );
  }
  return { reason: Reason.SmokeTestPassed, status: { result: "Passed", message: `${smoke.answers.length} prompt(s) answered`, answers } };
}

/** Truncated, and without control characters (an undertrained model emits any token; a terminal shows them raw). */
function cut(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "\ufffd");
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
