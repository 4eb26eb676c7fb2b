/** The planner's public face: decide() and what the reconciler and main.ts need. */
export { decide } from "./decide.ts";
export { POD_CREATE_RECHECK_MS, podCreateSuspect } from "./pods.ts";
export { DEFAULT_PLANNER_SETTINGS, type Action, type Decision, type MissingReference, type Observed, type PlannerSettings } from "./types.ts";
