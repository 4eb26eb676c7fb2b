/**
 * Where the time between "training Job created" and "every training pod Running" goes, one step at a time
 * (pure). Times are the harness's first sightings (its own watches), in ms:
 *   Job created → pods created (the Job controller) → claim bound (the volume provisioner and the PV binder;
 *   only for controllers that make a claim per job) → scheduled (the scheduler; a pod whose claim is unbound
 *   is unschedulable until it binds) → Running (the kubelet, kwok here).
 * For a gang, "pods created/scheduled/Running" is when the last pod of the gang got there.
 */
export interface Milestones {
  jobSeen: number;
  podsCreated: number;
  claimBound?: number;
  scheduled: number;
  running: number;
}

export const STEPS = ["jobToPods", "podsToClaimBound", "toScheduled", "scheduledToRunning"] as const;
export type Step = (typeof STEPS)[number];

export const STEP_LABELS: Record<Step, string> = {
  jobToPods: "Job created → pods created",
  podsToClaimBound: "pods created → claim bound",
  toScheduled: "→ pods scheduled",
  scheduledToRunning: "scheduled → pods Running",
};

/** The steps of one job; a claim bound before its pods existed costs the pods nothing (0). */
export function steps(m: Milestones): Partial<Record<Step, number>> {
  const ready = m.claimBound === undefined ? m.podsCreated : Math.max(m.podsCreated, m.claimBound);
  return {
    jobToPods: m.podsCreated - m.jobSeen,
    ...(m.claimBound !== undefined ? { podsToClaimBound: Math.max(0, m.claimBound - m.podsCreated) } : {}),
    toScheduled: Math.max(0, m.scheduled - ready),
    scheduledToRunning: m.running - m.scheduled,
  };
}
