import { Type, type Static, type TSchema } from 'typebox';
import { JOB_STATES, type JobState } from '../../ledger/types.js';

/**
 * A schema registered once with app.addSchema (it becomes components/schemas/<id> in the OpenAPI
 * document) and referenced from routes by $ref, keeping its static type.
 */
export function shared<T extends TSchema>(id: string, schema: T) {
  return { id, definition: { ...schema, $id: id } as T & { $id: string }, ref: Type.Unsafe<Static<T>>(Type.Ref(id)) };
}

/** The one error shape every route answers with (404s, validation errors and 500s included). */
export const ErrorSchema = shared('Error', Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, e.g. VALIDATION, NOT_FOUND, UNAUTHORIZED' }),
      message: Type.String({ description: 'Human-readable, secret-free' }),
    }),
  },
  { description: 'Error: a stable code and a human-readable message' },
));
export const ErrorResponse = ErrorSchema.ref;

export const JobStateSchema = Type.Unsafe<JobState>({ type: 'string', enum: [...JOB_STATES] });

export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

/** Milliseconds since epoch rendered as ISO-8601 for humans and tools alike. */
export const IsoTime = Type.String({ format: 'date-time' });

export const CountsByState = Type.Object(
  Object.fromEntries(JOB_STATES.map((s) => [s, Type.Integer({ minimum: 0 })])) as Record<JobState, ReturnType<typeof Type.Integer>>,
  { description: 'Number of jobs in the ledger per state' },
);

/** Responses every route may give besides its own. */
export const commonErrors = {
  400: ErrorResponse,
  500: ErrorResponse,
};
