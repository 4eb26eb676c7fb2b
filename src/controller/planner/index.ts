/** The planner's public face: decide() and the types the reconciler and main.ts need. */
export { decide } from "./decide.ts";
export { podCreateSuspect, POD_CREATE_CHECK_MS } from "./pods.ts";
export { MISSING_REFERENCE_RECHECK_MS } from "./validation.ts";
export { DEFAULT_PLANNER_SETTINGS, type Action, type Decision, type MissingReference, type Observed, type PlannedEvent, type PlannerSettings } from "./types.ts";
