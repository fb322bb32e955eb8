/** A complete bridge INI pointing at running simulators (used by `simulate --write-config` and `demo`). */
export interface SimulatorEndpoints {
  massOrigin: string;
  instanceUuid: string;
  instanceKey: string;
  alOrigin: string;
  alUser: string;
  alApiKey: string;
  stateDir: string;
  /** Extra `Key = value` lines per section, overriding the defaults below. */
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
    },
    Bridge: { StateDir: e.stateDir, Concurrency: 4, MaxInFlight: 100, ResultDeadline: 60, QueuePollTime: 0.5 },
    // The simulated CAPE tags network IOCs in sections with a heuristic of score 0 (level info), as the real one
    // mostly does: with the default IOCMinVerdict (suspicious) the demo would relate none of them.
    Report: { IOCMinVerdict: 'info' },
    API: { Listen: '127.0.0.1:8080' },
  };
  for (const [section, keys] of Object.entries(e.overrides ?? {})) {
    sections[section] = { ...(sections[section] ?? {}), ...keys };
  }
  const lines = ['; Written by mass-al-bridge for the built-in simulators. Do not use these keys anywhere else.'];
  for (const [section, keys] of Object.entries(sections)) {
    lines.push('', `[${section}]`);
    for (const [k, v] of Object.entries(keys)) lines.push(`${k} = ${String(v)}`);
  }
  return `${lines.join('\n')}\n`;
}
