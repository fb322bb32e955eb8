/** Schemas registered once with app.addSchema; they appear as components/schemas in the OpenAPI document. */
import { ErrorSchema } from './common.js';
import { JobEventShared, JobShared } from './jobs.js';
import { UpstreamHealthShared } from './status.js';

export const SHARED_SCHEMAS = [ErrorSchema, JobShared, JobEventShared, UpstreamHealthShared].map((s) => s.definition);
