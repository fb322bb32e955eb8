import type { AssemblylineSimulatorOptions } from '../simulators/assemblyline/index.js';

/** The quotas of the locked-down user. */
export const LOCKED_DOWN_QUOTAS = { asyncSubmissions: 5, dailyApiCalls: 3000 } as const;

/**
 * The Assemblyline simulator's user configured like a locked-down production service account
 * (`demo --locked-down`, `simulate --locked-down`): no `submission_customize` role, clearance
 * TLP:AMBER, the profile `static` that fixes priority 200 and restricts priority, services and
 * ignore_cache and excludes Dynamic Analysis, a required ingest metadata field `sensor`, at most 5
 * async concurrent submissions and 3000 API calls a day (queue reads count, ingest does not).
 */
export function lockedDownAssemblylineOptions(): AssemblylineSimulatorOptions {
  return {
    roles: ['submission_view', 'submission_create', 'file_download'],
    userClassification: 'TLP:AMBER',
    profiles: [
      {
        name: 'static',
        displayName: 'Static Analysis',
        params: { priority: 200 },
        restrictedParams: { submission: ['priority', 'services', 'ignore_cache'] },
        excludedServices: ['Dynamic Analysis'],
      },
    ],
    metadataScheme: { ingest: { _default: { sensor: { required: true } } } },
    quotas: { asyncSubmissions: LOCKED_DOWN_QUOTAS.asyncSubmissions, dailyApiCalls: LOCKED_DOWN_QUOTAS.dailyApiCalls },
  };
}

/**
 * The [Assemblyline] keys a bridge needs for the {@link lockedDownAssemblylineOptions} user: the profile,
 * the required metadata field, Priority empty (the profile decides) and a classification within the
 * user's clearance.
 */
export const LOCKED_DOWN_BRIDGE_KEYS: Record<string, string> = {
  SubmissionProfile: 'static',
  Metadata: 'sensor=mass',
  Priority: '',
  Classification: 'TLP:GREEN',
};

/**
 * `[Bridge] QueueReadsPerMinute` for the locked-down user: Assemblyline counts every notification-queue read against
 * the daily API quota, so the reads may use at most half of it (1440 minutes a day); the rest is left for the other
 * calls (results, files, the hash-first ingest lookups). With 3000 calls a day: 1.
 */
export const LOCKED_DOWN_QUEUE_READS_PER_MINUTE = Math.max(1, Math.floor(LOCKED_DOWN_QUOTAS.dailyApiCalls / 2 / 1440));

/** Comment lines written above a key of the locked-down configuration (`Section.Key`): why it has that value. */
const LOCKED_DOWN_NOTES: Record<string, string[]> = {
  'Bridge.QueuePollTime': [
    `The Assemblyline user has a quota of ${LOCKED_DOWN_QUOTAS.dailyApiCalls} API calls a day, and every notification-queue`,
    'read counts: an idle bridge reads once every QueuePollTime, 1440 reads a day at 60 s.',
  ],
  'Bridge.QueueReadsPerMinute': [
    'While jobs wait, the reads follow QueueReadsPerMinute instead; keep it well under the quota / 1440',
    `(${(LOCKED_DOWN_QUOTAS.dailyApiCalls / 1440).toFixed(1)} a minute). ${LOCKED_DOWN_QUEUE_READS_PER_MINUTE} a minute, ${LOCKED_DOWN_QUEUE_READS_PER_MINUTE * 1440} reads a day, leaves more than half of the quota`,
    'for reading results; a notification may then be read up to a minute late.',
  ],
};

/** A complete bridge INI pointing at running simulators (used by `simulate --write-config` and `demo`). */
export interface SimulatorEndpoints {
  massOrigin: string;
  instanceUuid: string;
  instanceKey: string;
  alOrigin: string;
  alUser: string;
  alApiKey: string;
  stateDir: string;
  /** The Assemblyline simulator runs with {@link lockedDownAssemblylineOptions}: write {@link LOCKED_DOWN_BRIDGE_KEYS}. */
  lockedDown?: boolean;
  /** Extra `Key = value` lines per section, overriding the defaults below (and the locked-down keys). */
  overrides?: Record<string, Record<string, string | number | boolean>>;
}

export function renderSimulatorIni(e: SimulatorEndpoints): string {
  const sections: Record<string, Record<string, string | number | boolean>> = {
    GLOBAL: { ServerURL: `${e.massOrigin}/`, APIEndpoint: 'api/', SleepTime: 1 },
    AssemblylineAnalysis: { PollTime: 2, UUID: e.instanceUuid, SystemName: 'assemblyline', 'mass api key': e.instanceKey },
    Assemblyline: {
      URL: e.alOrigin,
      User: e.alUser,
      APIKey: e.alApiKey,
      NotificationQueue: 'mass-bridge-results',
      Priority: 150,
      NeverDrop: false,
      ...(e.lockedDown ? LOCKED_DOWN_BRIDGE_KEYS : {}),
    },
    Bridge: {
      StateDir: e.stateDir,
      MaxInFlight: 100,
      ResultDeadline: 60,
      QueuePollTime: e.lockedDown ? 60 : 0.5,
      ...(e.lockedDown ? { QueueReadsPerMinute: LOCKED_DOWN_QUEUE_READS_PER_MINUTE } : {}),
    },
    // The simulated CAPE tags network IOCs in sections with a heuristic of score 0 (level info), as the real one
    // mostly does: with the default IOCMinVerdict (suspicious) the demo would relate none of them.
    Report: { IOCMinVerdict: 'info' },
    API: { Listen: '127.0.0.1:8080' },
  };
  for (const [section, keys] of Object.entries(e.overrides ?? {})) {
    sections[section] = { ...(sections[section] ?? {}), ...keys };
  }
  const notes = e.lockedDown ? LOCKED_DOWN_NOTES : {};
  const lines = ['; Written by mass-al-bridge for the built-in simulators. Do not use these keys anywhere else.'];
  for (const [section, keys] of Object.entries(sections)) {
    lines.push('', `[${section}]`);
    for (const [k, v] of Object.entries(keys)) {
      // A note explains the value written here, not an override of it.
      const note = notes[`${section}.${k}`];
      if (note && e.overrides?.[section]?.[k] === undefined) lines.push(...note.map((n) => `; ${n}`));
      lines.push(`${k} = ${String(v)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
