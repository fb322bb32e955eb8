/**
 * An extracted file goes from Assemblyline to MASS as a stream: the Assemblyline download
 * (`/api/v4/file/download/<sha256>/`, raw or CaRT decoded on the fly) is piped into the multipart body of
 * MASS `sample/submit_file/`. Memory does not grow with the file's size; nothing is written to disk.
 *
 * The content is checked while it streams (AssemblylineClient.openFile): at most MaxExtractedSize bytes,
 * exactly the size Assemblyline reported when it reported one, and the sha256 Assemblyline names the file
 * by. The last chunk is held back until the hash is known, so when a check fails the upload is cut before
 * its end (the body never completes, its closing multipart boundary is never sent) and MASS creates no
 * sample: a wrong file cannot become a MASS sample under the bridge's name.
 */
import { BridgeError } from '../../errors.js';
import type { MassSample } from '../../mass/types.js';
import type { BridgeContext } from '../context.js';

export interface ExtractedFileUpload {
  sha256: string;
  /** Submission the file belongs to (Assemblyline adds its metadata to a CaRT header; the download works without). */
  sid: string;
  /** File name for MASS (already made acceptable by massSafeFileName). */
  filename: string;
  /** Size Assemblyline reported for the file (bytes), when it did. */
  size: number | null;
  tlpLevel: number;
  tags: string[];
}

/**
 * Streams one extracted file from Assemblyline into a new MASS file sample and returns the sample.
 * Each try re-opens the download (a stream cannot be replayed) under the step's retries (StepRetries,
 * transient failures only). Errors: BridgeError from either upstream; a download that breaks or fails a
 * check during the upload is reported as that Assemblyline error (upstream 'assemblyline', and it does
 * not count against MASS's health): SAMPLE_TOO_LARGE above MaxExtractedSize, UPSTREAM_PROTOCOL for a
 * wrong length or sha256.
 */
export function uploadExtractedFile(ctx: BridgeContext, file: ExtractedFileUpload): Promise<MassSample> {
  const signal = ctx.signal;
  const maxBytes = ctx.config.report.maxExtractedSize;
  const tooLarge = (err: BridgeError): BridgeError =>
    new BridgeError('SAMPLE_TOO_LARGE', `extracted file larger than MaxExtractedSize (${err.message})`, { upstream: 'assemblyline', cause: err });
  return ctx.retry(async () => {
    const content = await ctx.al.openFile(file.sha256, { sid: file.sid, maxBytes, size: file.size ?? undefined }, { signal }).catch((err: unknown) => {
      throw err instanceof BridgeError && err.code === 'SAMPLE_TOO_LARGE' ? tooLarge(err) : err;
    });
    let broken: unknown;
    content.body.once('error', (err: unknown) => {
      broken = err;
    });
    // Read by the instrumentation: a download that breaks is not a MASS failure.
    const requestOptions = { signal, sourceFailed: () => broken !== undefined };
    try {
      return await ctx.mass.submitFileSample({ filename: file.filename, body: content.body, size: content.size, tlpLevel: file.tlpLevel, tags: file.tags }, requestOptions);
    } catch (err) {
      // The upload was cut before its end: MASS made no sample.
      if (broken instanceof BridgeError && broken.code === 'SAMPLE_TOO_LARGE') throw tooLarge(broken);
      if (broken === undefined || signal.aborted) throw err;
      throw broken instanceof BridgeError
        ? broken
        : new BridgeError('NETWORK', `the Assemblyline download of ${file.sha256} broke during the upload to MASS: ${broken instanceof Error ? broken.message : String(broken)}`, {
            upstream: 'assemblyline',
            cause: broken,
          });
    } finally {
      content.body.destroy();
    }
  });
}
