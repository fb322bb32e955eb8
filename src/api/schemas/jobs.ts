import { Type, type Static } from 'typebox';
import { JOB_STATES } from '../../ledger/types.js';
import { IsoTime, JobStateSchema, Nullable, shared } from './common.js';

export const JobIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, description: 'MASS scheduled-analysis id' }) });
export type JobIdParams = Static<typeof JobIdParams>;

const STATE_LIST_PATTERN = `^(${JOB_STATES.join('|')})(,(${JOB_STATES.join('|')}))*$`;

export const JobListQuery = Type.Object({
  state: Type.Optional(Type.String({ pattern: STATE_LIST_PATTERN, description: `Comma-separated states: ${JOB_STATES.join(', ')}` })),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Jobs created at or after this time' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Jobs created at or before this time' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'nextCursor of the previous page' })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
});
export type JobListQuery = Static<typeof JobListQuery>;

const JobObject = Type.Object(
  {
    id: Type.String(),
    state: JobStateSchema,
    scheduledAnalysisUrl: Type.String(),
    sampleUrl: Type.String(),
    sha256: Nullable(Type.String()),
    fileName: Nullable(Type.String()),
    fileSize: Nullable(Type.Integer()),
    sampleCls: Nullable(Type.String()),
    attempts: Type.Integer(),
    ingestId: Nullable(Type.String()),
    sid: Nullable(Type.String()),
    cacheHit: Type.Boolean(),
    score: Nullable(Type.Number()),
    alFailure: Nullable(Type.String()),
    errorCode: Nullable(Type.String()),
    errorMessage: Nullable(Type.String()),
    lastError: Nullable(Type.String()),
    lastErrorCode: Nullable(Type.String()),
    massReportUrl: Nullable(Type.String()),
    notBefore: IsoTime,
    deadline: Nullable(IsoTime),
    createdAt: IsoTime,
    updatedAt: IsoTime,
    finishedAt: Nullable(IsoTime),
    assemblylineUrl: Nullable(Type.String({ description: 'Link to the submission in the Assemblyline UI' })),
    identity: Type.String({ description: "The identity whose poll claimed the job and whose key reports it ('default' = [AssemblylineAnalysis])" }),
  },
  { description: 'One MASS scheduled analysis as the bridge tracks it' },
);
export type JobView = Static<typeof JobObject>;
export const JobShared = shared('Job', JobObject);
export const JobSchema = JobShared.ref;

export const JobListResponse = Type.Object({
  jobs: Type.Array(JobSchema),
  nextCursor: Nullable(Type.String({ description: 'Pass as cursor for the next page' })),
}, { description: 'One page of jobs, newest first; nextCursor is null on the last page' });

const JobEventObject = Type.Object({
  seq: Type.Integer(),
  at: IsoTime,
  type: Type.String(),
  state: JobStateSchema,
  message: Nullable(Type.String()),
  code: Nullable(Type.String()),
  data: Nullable(Type.Object({}, { additionalProperties: true })),
}, { description: 'One entry of a job\'s append-only history' });
export const JobEventShared = shared('JobEvent', JobEventObject);
export const JobEventSchema = JobEventShared.ref;

export const JobDetailResponse = Type.Object({
  job: JobSchema,
  events: Type.Array(JobEventSchema),
  assemblyline: Type.Object({
    sid: Nullable(Type.String()),
    ingestId: Nullable(Type.String()),
    uiUrl: Nullable(Type.String()),
  }),
  mass: Type.Object({
    scheduledAnalysisUrl: Type.String(),
    sampleUrl: Type.String(),
    reportUrl: Nullable(Type.String()),
  }),
  relatedSamples: Type.Array(
    Type.Object({ key: Type.String(), kind: Type.String(), value: Type.String(), massSampleUrl: Type.String(), createdAt: IsoTime }),
  ),
  relations: Type.Array(
    Type.Object({ key: Type.String(), kind: Type.String(), sampleUrl: Type.String(), otherUrl: Type.String(), massRelationUrl: Type.String(), createdAt: IsoTime }),
  ),
  lastError: Nullable(Type.Object({ code: Nullable(Type.String()), message: Type.String() })),
}, { description: 'The job with its history and links' });
export type JobDetailResponse = Static<typeof JobDetailResponse>;

export const AbandonBody = Type.Object({
  reason: Type.String({ minLength: 1, maxLength: 2000, description: 'Sent to MASS as the error_message of the error report' }),
});
export type AbandonBody = Static<typeof AbandonBody>;

export const JobActionResponse = Type.Object({ job: JobSchema }, { description: 'The job after the action' });
