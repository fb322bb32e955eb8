/** A BridgeControl for API tests: status is a mutable object, actions change the ledger like the bridge would. */
import { BridgeError } from '../../src/errors.js';
import type { BridgeControl, BridgeStatus, UpstreamHealth } from '../../src/bridge/control.js';
import type { Job, Ledger } from '../../src/ledger/types.js';

export interface FakeControl extends BridgeControl {
  /** Mutable: tests edit it to simulate upstream health, polls, pause. */
  state: BridgeStatus;
  calls: Array<{ action: 'pause' | 'resume' | 'retry' | 'abandon'; id?: string; reason?: string }>;
}

export function healthyUpstream(at: number): UpstreamHealth {
  return { lastSuccessAt: at, lastErrorAt: null, lastError: null, lastErrorCode: null, consecutiveFailures: 0 };
}

export function createFakeControl(ledger: Ledger, opts: { now?: () => number; startedAt?: number } = {}): FakeControl {
  const now = opts.now ?? Date.now;
  const t1 = now();
  const t0 = opts.startedAt ?? t1;
  const control: FakeControl = {
    state: {
      startedAt: t0,
      paused: false,
      pollTimeSeconds: 10,
      lastPollAt: t1,
      upstreams: { mass: healthyUpstream(t1), assemblyline: healthyUpstream(t1) },
      massApiRoot: 'http://mass.test/api/',
      assemblylineUiUrl: 'https://al.test',
      instanceUuid: '00000000-0000-4000-8000-000000000001',
    },
    calls: [],
    status() {
      return structuredClone(control.state);
    },
    pause() {
      control.calls.push({ action: 'pause' });
      control.state.paused = true;
    },
    resume() {
      control.calls.push({ action: 'resume' });
      control.state.paused = false;
    },
    async retryJob(id: string): Promise<Job> {
      control.calls.push({ action: 'retry', id });
      const job = ledger.get(id);
      if (!job) throw new BridgeError('NOT_FOUND', `job ${id} not found`);
      if (job.state !== 'held') throw new BridgeError('INTERNAL', `job ${id} is ${job.state}, only held jobs can be retried`);
      return ledger.update(id, { state: 'claimed', notBefore: now() }, { type: 'retry', message: 'operator retry' }, now());
    },
    async abandonJob(id: string, reason: string): Promise<Job> {
      control.calls.push({ action: 'abandon', id, reason });
      const job = ledger.get(id);
      if (!job) throw new BridgeError('NOT_FOUND', `job ${id} not found`);
      if (job.state === 'done' || job.state === 'failed') throw new BridgeError('INTERNAL', `job ${id} is already ${job.state}`);
      // Like the bridge: an error report is planned (reporting), then accepted by MASS (failed).
      if (job.state !== 'reporting') {
        ledger.update(id, { state: 'reporting', errorCode: 'ABANDONED', errorMessage: reason }, { type: 'error-report-planned', code: 'ABANDONED', message: reason }, now());
      }
      return ledger.update(
        id,
        { state: 'failed', errorCode: 'ABANDONED', errorMessage: reason },
        { type: 'abandoned', message: reason, code: 'ABANDONED' },
        now(),
      );
    },
  };
  return control;
}
