/**
 * The MASS client tutorial's file-size analysis (mass-project/mass_client, doc/source/tutorial.rst) in TypeScript.
 *
 *   node --import tsx examples/size-analysis.ts --config examples/size-analysis.ini
 *
 * Polls MASS as the instance configured in [SizeAnalysisInstance], downloads each file sample to a
 * temporary file, measures it, and reports the size. Stop with Ctrl-C.
 */
import { stat } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../src/log.js';
import { FileAnalysisClient, readAnalysisIni, type AnalysisClientOptions, type AnalysisRequest } from '../src/mass/analysis-client.js';

export class SizeAnalysisInstance extends FileAnalysisClient {
  static override configSection = 'SizeAnalysisInstance';

  async doAnalysis(request: AnalysisRequest): Promise<void> {
    const fileSize = await request.temporarySampleFile(async (path) => (await stat(path)).size);
    const report = { 'file size': fileSize };
    // Small results may go into additional_metadata; the JSON object is what a report reader downloads.
    await request.submitReport({
      additionalMetadata: report,
      jsonReportObjects: { file_size_analysis: report },
    });
    this.log.info({ sample: request.sample.url, fileSize }, 'reported file size');
  }
}

export async function createSizeAnalysisClient(configPath: string, options: Omit<AnalysisClientOptions, 'ini'> = {}): Promise<SizeAnalysisInstance> {
  return new SizeAnalysisInstance({ ...options, ini: await readAnalysisIni(configPath) });
}

/** Runs until SIGINT/SIGTERM (or `signal`). Returns the process exit code. */
export async function main(argv: string[], opts: { signal?: AbortSignal; logger?: Logger } = {}): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) {
    process.stderr.write('usage: size-analysis --config <file.ini>\n');
    return 2;
  }
  const logger = opts.logger ?? createLogger({ name: 'size-analysis', pretty: process.stdout.isTTY });
  let client: SizeAnalysisInstance;
  try {
    client = await createSizeAnalysisClient(values.config, { logger });
  } catch (err) {
    logger.error({ err }, 'invalid configuration');
    return 2;
  }
  const stop = (): void => void client.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    await client.start();
    return 0;
  } catch (err) {
    logger.error({ err }, 'size analysis client failed');
    return 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    opts.signal?.removeEventListener('abort', stop);
    await client.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
