import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { isComplaint, logDigest } from "./digest.ts";

// Lines as the components wrote them in this repository's test cluster (kube-controller-manager's klog, kwok's JSON).
const KCM_WARN =
  'W1202 01:16:18.660645   23575 actual_state_of_world.go:541] "Failed to update statusUpdateNeeded field in actual state of world" logger="persistentvolume-attach-detach-controller"';
const KCM_INFO =
  'I1202 01:24:58.402837   23575 node_lifecycle_controller.go:675] "Controller observed a new Node" logger="node-lifecycle-controller" node="kwok-progress-scale"';
const KWOK_ERROR = (pod: string) =>
  `{"time":"2026-12-02T01:16:21.449753319Z","level":"ERROR","msg":"failed to apply stage","pod":"smoke-gc-c8812f/${pod}","stage":"pod-delete","err":"failed to delete pod ${pod}: pods \\"${pod}\\" not found"}`;

test("warnings and errors only, repeats of one message grouped with a count", () => {
  assert.equal(isComplaint(KCM_WARN), true);
  assert.equal(isComplaint(KCM_INFO), false);
  assert.equal(isComplaint(KWOK_ERROR("forever-snwb2")), true);
  const dir = mkdtempSync(join(tmpdir(), "digest-"));
  writeFileSync(join(dir, "kube-controller-manager.log"), [KCM_INFO, KCM_WARN, KCM_INFO].join("\n"));
  writeFileSync(join(dir, "kwok.log"), [KWOK_ERROR("forever-snwb2"), KWOK_ERROR("forever-mbtzd"), KWOK_ERROR("train-0-wr4wq")].join("\n"));
  const digest = logDigest(dir);
  assert.match(digest, /--- kube-controller-manager: 1 kinds/);
  assert.match(digest, /^1× W1202/m);
  assert.match(digest, /--- kwok: 1 kinds/);
  assert.match(digest, /^3× .*train-0-wr4wq/m, "three pods' failures are one message, its newest shown");
  assert.doesNotMatch(digest, /etcd/, "a component without a log is skipped");
});
