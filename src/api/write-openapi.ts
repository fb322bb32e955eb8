/** `npm run openapi`: rewrites openapi/openapi.json from the route schemas. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OPENAPI_PATH, generateOpenApiDocument, serializeOpenApi } from './openapi.js';

const doc = await generateOpenApiDocument();
writeFileSync(OPENAPI_PATH, serializeOpenApi(doc));
process.stdout.write(`wrote ${fileURLToPath(OPENAPI_PATH)}\n`);
