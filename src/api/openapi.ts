/** The OpenAPI document as the app generates it from its route schemas (the committed openapi/openapi.json must match). */
import type { BridgeControl } from '../bridge/control.js';
import type { Ledger } from '../ledger/types.js';
import { createMetrics } from '../metrics.js';
import { buildApi } from './app.js';

export const OPENAPI_PATH = new URL('../../openapi/openapi.json', import.meta.url);

// Generating the document registers routes but never calls them; any call is a bug.
const inert = <T extends object>(name: string): T =>
  new Proxy({} as T, {
    get(_target, prop) {
      if (prop === 'then') return undefined;
      return () => {
        throw new Error(`${name}.${String(prop)} called while generating the OpenAPI document`);
      };
    },
  });

export async function generateOpenApiDocument(): Promise<Record<string, unknown>> {
  const app = await buildApi({
    ledger: inert<Ledger>('ledger'),
    control: inert<BridgeControl>('control'),
    metrics: createMetrics({ collectProcessMetrics: false }),
  });
  try {
    await app.ready();
    return structuredClone(app.swagger()) as unknown as Record<string, unknown>;
  } finally {
    await app.close();
  }
}

/** The exact text written to openapi/openapi.json. */
export function serializeOpenApi(doc: Record<string, unknown>): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
