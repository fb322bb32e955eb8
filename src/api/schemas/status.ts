import { Type } from 'typebox';
import { CountsByState, IsoTime, JobStateSchema, Nullable, shared } from './common.js';

export const HealthResponse = Type.Object({ status: Type.Literal('ok') }, { description: 'The process serves HTTP' });

export const ReadyResponse = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Object({
    ledger: Type.Boolean({ description: 'The ledger accepts writes' }),
    mass: Type.Boolean({ description: 'A MASS poll succeeded within 2 × PollTime' }),
    assemblyline: Type.Boolean({ description: 'Assemblyline answered within the readiness window' }),
  }),
  reasons: Type.Array(Type.String(), { description: 'Why the bridge is not ready (empty when ready)' }),
}, { description: 'Readiness: 200 when every check passes, 503 otherwise' });

export const UpstreamHealthShared = shared('UpstreamHealth', Type.Object({
  ok: Type.Boolean({ description: 'Last call succeeded (no failure since the last success)' }),
  lastSuccessAt: Nullable(IsoTime),
  lastErrorAt: Nullable(IsoTime),
  lastError: Nullable(Type.String()),
  lastErrorCode: Nullable(Type.String()),
  consecutiveFailures: Type.Integer({ minimum: 0 }),
}, { description: 'Health of one upstream as the bridge saw it on its own calls' }));
const UpstreamHealthSchema = UpstreamHealthShared.ref;

const Window = Type.Object({
  done: Type.Integer({ minimum: 0 }),
  failed: Type.Integer({ minimum: 0 }),
  perMinute: Type.Number({ minimum: 0, description: '(done + failed) / window minutes' }),
});

export const StatusResponse = Type.Object({
  version: Type.String(),
  now: IsoTime,
  startedAt: IsoTime,
  uptimeSeconds: Type.Number(),
  paused: Type.Boolean(),
  instanceUuid: Type.String(),
  massApiRoot: Type.String(),
  assemblylineUiUrl: Type.String(),
  pollTimeSeconds: Type.Number(),
  lastPollAt: Type.Union([IsoTime, Type.Null()], { description: 'Last successful MASS poll; with several identities the least recent of their last polls' }),
  identities: Type.Array(
    Type.Object({
      name: Type.String({ description: "'default' for [AssemblylineAnalysis], else NAME of [AssemblylineAnalysis:NAME]" }),
      uuid: Type.String({ description: 'UUID of the instance on MASS' }),
      lastPollAt: Type.Union([IsoTime, Type.Null()], { description: "This identity's last successful poll (its heartbeat)" }),
      pendingOnMass: Nullable(Type.Integer({ minimum: 0, description: 'Scheduled analyses MASS listed for the instance at that poll, those in flight included (null before the first poll)' })),
      inFlight: Type.Integer({ minimum: 0, description: 'Jobs this identity claimed that are not reported yet (held excluded)' }),
      online: Type.Boolean({ description: 'MASS counts the instance online (a poll less than 10 minutes ago) and schedules work to it' }),
      lastPollError: Nullable(Type.String({ description: 'Why its last poll failed; null once a poll succeeds' })),
    }),
    { description: 'Every identity (instance of the analysis system on MASS) this bridge polls and reports with, the first first' },
  ),
  upstreams: Type.Object({ mass: UpstreamHealthSchema, assemblyline: UpstreamHealthSchema }),
  counts: CountsByState,
  inFlight: Type.Integer({ minimum: 0 }),
  throughput: Type.Object({ last5m: Window, last60m: Window }),
  oldestInFlightAgeSeconds: Nullable(Type.Number({ minimum: 0 })),
  oldestPerState: Type.Array(
    Type.Object({
      state: JobStateSchema,
      jobId: Type.String({ description: 'The job that has been in this state longest' }),
      ageSeconds: Type.Number({ minimum: 0, description: 'How long it has been in the state' }),
      budgetSeconds: Nullable(Type.Number({ minimum: 0, description: "The state's age budget: a job longer in the state is moved on by the reconciler (null: no age budget, e.g. held)" })),
    }),
    { description: 'For each unfinished state that holds jobs, in pipeline order: the job longest in it, how long, and the state\'s age budget' },
  ),
}, { description: 'What the bridge is doing' });

export const ThroughputQuery = Type.Object({
  minutes: Type.Integer({ minimum: 1, maximum: 1440, default: 60, description: 'How far back' }),
  bucket: Type.Integer({ minimum: 10, maximum: 3600, default: 60, description: 'Bucket width in seconds' }),
});

export const ThroughputResponse = Type.Object({
  from: IsoTime,
  to: IsoTime,
  bucketSeconds: Type.Integer(),
  buckets: Type.Array(
    Type.Object({ start: IsoTime, done: Type.Integer({ minimum: 0 }), failed: Type.Integer({ minimum: 0 }) }),
    { description: 'Finished jobs per bucket, oldest first' },
  ),
}, { description: 'Finished jobs per time bucket' });

export const PausedResponse = Type.Object({ paused: Type.Boolean() }, { description: 'Whether the bridge now claims new work' });
