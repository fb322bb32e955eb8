/**
 * What the Assemblyline user may do with the configured ingest, read from /api/v4/user/whoami/ and a dry
 * parameter check: roles, the submission profile and the parameters it restricts, the classification
 * against the user's clearance, the daily quotas. Used by `doctor` (each finding with its fix) and at
 * start-up (logged once). Rules: assemblyline-ui v4.7.4.stable6 helper/submission.py
 * (`update_submission_parameters`, `apply_changes_to_profile`, `init_submission`).
 */
import type { AssemblylineClient, AssemblylineUser } from '../assemblyline/types.js';
import type { BridgeConfig } from '../config/types.js';
import { BridgeError } from '../errors.js';
import { classifyIngestRefusal } from './ingest-gate.js';
import { configuredParamNames, ingestMetadata, ingestParams } from './ingest-request.js';

export interface IngestFinding {
  ok: boolean;
  what: string;
  fix?: string;
}

/** The [Assemblyline] key that sets an ingest parameter (for fixes). */
const KEY_OF_PARAM: Record<string, string> = {
  priority: 'Priority', deep_scan: 'DeepScan', never_drop: 'NeverDrop', classification: 'Classification', ttl: 'TTL', services: 'Services',
};

/** Level index of a classification in the engine of whoami's `c12nDef` (levels only; -1 = unknown). */
export function classificationLevel(user: AssemblylineUser, classification: string): number {
  const levels = user.c12nDef?.levels ?? [];
  const head = classification.split('//')[0].trim().toUpperCase();
  const found = levels.find((l) => [l.name, l.short_name, ...(l.aliases ?? [])].some((n) => typeof n === 'string' && n.toUpperCase() === head));
  return found ? found.lvl : -1;
}

/** Findings from whoami alone (no call): roles, profile, restricted parameters, classification, quotas. */
export function evaluateUser(config: BridgeConfig, user: AssemblylineUser): IngestFinding[] {
  const al = config.assemblyline;
  const out: IngestFinding[] = [];
  const roles = new Set(user.roles);
  const missingRoles = ['submission_create', 'submission_view'].filter((r) => !roles.has(r) && !roles.has('administration'));
  if (missingRoles.length > 0) {
    out.push({ ok: false, what: `Assemblyline user '${user.username}' lacks the role(s) ${missingRoles.join(', ')}`, fix: 'give the user (and its API key) submission_create and submission_view' });
  }
  const customize = roles.has('submission_customize') || roles.has('administration');
  const profiles = user.configuration?.submission?.profiles ?? {};
  const names = Object.keys(profiles);
  const configured = configuredParamNames(al);
  if (!al.submissionProfile) {
    if (!customize) {
      out.push({
        ok: false, what: `Assemblyline user '${user.username}' has no submission_customize role, so every ingest needs a submission profile`,
        fix: `set [Assemblyline] SubmissionProfile to one of: ${names.join(', ') || '(none visible to this user)'}`,
      });
    } else {
      out.push({ ok: true, what: `user '${user.username}' has submission_customize: no profile needed; it may change every parameter (sent: ${configured.join(', ') || 'none'})` });
    }
  } else {
    const profile = profiles[al.submissionProfile];
    if (!profile) {
      out.push(customize
        ? { ok: false, what: `submission profile '${al.submissionProfile}' does not exist; Assemblyline ignores the name for this user (submission_customize) and uses its defaults`, fix: `set [Assemblyline] SubmissionProfile to one of: ${names.join(', ')}, or leave it empty` }
        : { ok: false, what: `submission profile '${al.submissionProfile}' does not exist for user '${user.username}'`, fix: `set [Assemblyline] SubmissionProfile to one of: ${names.join(', ') || '(none visible to this user)'}` });
    } else {
      const restricted = customize ? [] : (profile.restricted_params?.submission ?? []);
      const refused = configured.filter((p) => restricted.includes(p));
      const mayChange = customize ? 'every parameter (submission_customize)' : restricted.length ? `every parameter except ${restricted.join(', ')}` : 'every parameter';
      out.push({ ok: true, what: `submission profile '${al.submissionProfile}' (${profile.display_name ?? al.submissionProfile}): user '${user.username}' may change ${mayChange}; the bridge sends ${configured.join(', ') || 'no parameter'}` });
      if (refused.length > 0) {
        out.push({
          ok: false, what: `profile '${al.submissionProfile}' restricts ${refused.join(', ')}, which the configuration sets: Assemblyline would refuse every ingest`,
          fix: `leave ${refused.map((p) => `[Assemblyline] ${KEY_OF_PARAM[p] ?? p}`).join(', ')} empty/default so the profile decides, or ask the admin for the submission_customize role`,
        });
      }
    }
  }
  if (al.classification) {
    const want = classificationLevel(user, al.classification);
    const have = classificationLevel(user, user.classification);
    if (user.c12nDef?.levels?.length && want < 0) {
      out.push({ ok: false, what: `[Assemblyline] Classification '${al.classification}' is not a classification of this Assemblyline`, fix: `use one of: ${(user.c12nDef.levels ?? []).map((l) => l.short_name ?? l.name).join(', ')}, or leave it empty` });
    } else if (want >= 0 && have >= 0 && want > have) {
      out.push({ ok: false, what: `[Assemblyline] Classification '${al.classification}' is above the clearance of user '${user.username}' (${user.classification}): every ingest would be refused`, fix: `lower [Assemblyline] Classification to ${user.classification} or below, or ask the admin to raise the user's clearance` });
    } else {
      out.push({ ok: true, what: `classification '${al.classification}' is within the clearance of user '${user.username}' (${user.classification})` });
    }
  }
  const apiQuota = user.api_daily_quota ?? 0;
  const subQuota = user.submission_daily_quota ?? 0;
  if (apiQuota || subQuota) {
    out.push({ ok: true, what: `daily quotas of user '${user.username}': ${apiQuota || 'unlimited'} API calls (every call but ingest, queue reads included), ${subQuota || 'unlimited'} submissions` });
  }
  // Notification-queue reads count toward the daily API quota: idle polling alone must leave room for the work.
  const idleReads = Math.ceil(86_400 / config.bridge.queuePollTime);
  if (apiQuota && idleReads > apiQuota / 2) {
    out.push({
      ok: false, what: `[Bridge] QueuePollTime ${config.bridge.queuePollTime} s reads the notification queue ${idleReads} times a day while idle, more than half the daily API quota of ${apiQuota}`,
      fix: `set [Bridge] QueuePollTime to at least ${Math.ceil((86_400 * 2) / apiQuota)} seconds, or ask the admin for a larger api_daily_quota`,
    });
  }
  return out;
}

/**
 * Everything doctor and start-up say about the ingest: whoami findings plus the dry parameter check
 * (which Assemblyline runs before the file lookup, so metadata and classification are not covered by it).
 */
export async function checkIngestConfiguration(config: BridgeConfig, al: AssemblylineClient, signal?: AbortSignal): Promise<IngestFinding[]> {
  const out: IngestFinding[] = [];
  if (al.whoami) {
    try {
      out.push(...evaluateUser(config, await al.whoami({ signal })));
    } catch (err) {
      out.push({ ok: false, what: `Assemblyline does not tell who this user is (whoami): ${err instanceof Error ? err.message : String(err)}`, fix: 'check the credentials; an API key needs read access' });
    }
  }
  const a = config.assemblyline;
  if (al.checkIngestParams) {
    const job = { id: 'doctor', sampleUrl: '' };
    const refused = await al.checkIngestParams({
      params: ingestParams(a, job), metadata: ingestMetadata(a, config.bridge.instanceName, job, 1), submissionProfile: a.submissionProfile || undefined, type: a.ingestType || undefined,
    }, { signal }).catch((err: unknown) => (err instanceof BridgeError ? err : new BridgeError('INTERNAL', String(err))));
    if (refused) {
      const r = classifyIngestRefusal(refused, 0);
      out.push({ ok: false, what: `Assemblyline refuses the configured ingest parameters: ${refused.body ?? refused.message}`, fix: r?.fix ?? 'check [Assemblyline] SubmissionProfile and the ingest parameters' });
    } else {
      out.push({ ok: true, what: 'Assemblyline accepts the configured submission profile and ingest parameters (dry check, nothing submitted)' });
    }
  }
  const keys = Object.keys(ingestMetadata(a, config.bridge.instanceName, { id: 'x', sampleUrl: '' }, 1));
  out.push({
    ok: true,
    what: `metadata sent with every ingest: ${keys.join(', ') || 'none'}. Assemblyline does not publish its ingest metadata scheme: a required or forbidden field shows at the first ingest, which then stops claiming and names the field in /ready`,
  });
  return out;
}
