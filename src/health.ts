/**
 * What "up" means for an upstream (MASS or Assemblyline), shared by the metrics, the status API
 * and the bridge that keeps the health records. No dependencies, so every layer may import it.
 */

/** The part of an upstream's health record that decides whether it is up. Times in ms since epoch. */
export interface UpstreamHealthReading {
  /** Last successful call, null before the first. */
  lastSuccessAt: number | null;
  /** Failed calls since the last success. */
  consecutiveFailures: number;
}

/** "Up": the upstream has answered, and no call failed since (the status API's `ok`, the massal_upstream_up gauge). */
export function isUp(health: UpstreamHealthReading): boolean {
  return health.lastSuccessAt !== null && health.consecutiveFailures === 0;
}
