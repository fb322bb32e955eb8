import type { AssemblylineClient, IngestMessage } from '../../src/assemblyline/types.js';
import { waitFor } from './wait.js';

/** Polls an Assemblyline notification queue through the client until one message arrives (bounded); client errors fail at once. */
export function nextMessage(al: AssemblylineClient, queue: string): Promise<IngestMessage> {
  return waitFor(async () => (await al.getMessages(queue, 10))[0], { what: `a message on ${queue}`, rethrow: true });
}
