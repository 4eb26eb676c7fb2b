/**
 * Helpers for e2e tests against the local cluster (e2e/cluster).
 *
 *   import { kubeClients, freshNamespace, waitFor, applyYaml, setPodLogs, FATE_ANNOTATION, kwokToleration } from '../lib/index.ts';
 */
export { ensureCluster, kubeconfigPath, toolPath } from "../cluster/cluster.ts";
export {
  EXIT_CODE_ANNOTATION,
  FATE_ANNOTATION,
  GPU_PRODUCT,
  GPUS_PER_NODE,
  KWOK_TAINT,
  NODE_PREFIX,
  PROVISIONER_NAME,
  RUN_SECONDS_ANNOTATION,
  START_SECONDS_ANNOTATION,
  STORAGE_CLASS,
  TERMINATION_MESSAGE_ANNOTATION,
  kwokToleration,
  nodeLabels,
  nodeNames,
} from "../cluster/manifests.ts";
export { applyObjects, applyYaml, FIELD_MANAGER } from "./apply.ts";
export { apiStatus, clientsFor, ignoreNotFound, kubeClients, kubeClientsForToken, type KubeClients } from "./kube.ts";
export { appendPodLogs, followPodLogs, setPodLogs, type LogFollower, type PodLogsOptions } from "./logs.ts";
export { freshNamespace, TEST_NAMESPACE_LABEL, withNamespace, type TestNamespace } from "./namespace.ts";
export { waitFor, WaitTimeoutError, type WaitOptions } from "./wait.ts";
