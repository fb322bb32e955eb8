import type { BridgeControl } from '../bridge/control.js';
import type { Ledger } from '../ledger/types.js';
import type { BridgeMetrics } from '../metrics.js';
import type { WriteGuard } from './plugins/auth.js';

/** What every route module receives: the ledger and control (never an upstream client), a clock. */

export interface ApiContext {
  ledger: Ledger;
  control: BridgeControl;
  metrics: BridgeMetrics;
  now: () => number;
  version: string;
  readyAssemblylineWindowMs: number;
  requireToken: WriteGuard;
}
