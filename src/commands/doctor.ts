/**
 * `mass-al-bridge doctor --config FILE`: checks, without side effects on either system, that the
 * configuration reaches MASS and Assemblyline with the right identities and that the ledger is usable.
 * Every failure comes with the likely cause and fix (docs/operations.md, troubleshooting).
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createAssemblylineClient } from '../assemblyline/client.js';
import { assemblylineClientOptionsFromConfig } from '../assemblyline/options.js';
import type { AssemblylineClient } from '../assemblyline/types.js';
import type { BridgeConfig, MassIdentityConfig } from '../config/types.js';
import { BridgeError, describeTlsFailure, tlsFailureCode } from '../errors.js';
import { checkIngestConfiguration } from '../bridge/ingest-check.js';
import { openLedger } from '../ledger/sqlite.js';
import { createMassClient, sameMassUrl } from '../mass/client.js';
import { massClientOptionsFromConfig } from '../mass/options.js';
import type { AnalysisSystemInstance, MassClient } from '../mass/types.js';

export interface DoctorOptions {
  config: BridgeConfig;
  out: { write(chunk: string): unknown };
  /** For tests: clients to use instead of building them from the configuration. */
  mass?: MassClient;
  assemblyline?: AssemblylineClient;
  /** True when MASS is this project's simulator, which has no web UI: hints then point at the terminal running `simulate`. */
  massIsSimulator?: boolean;
}

interface Finding {
  ok: boolean;
  /** Not ok, but not a problem either (for example no ledger yet before the first run): printed as [note]. */
  note?: boolean;
  what: string;
  hint?: string;
}

function describe(err: unknown): string {
  if (err instanceof BridgeError) return `${err.code}${err.status ? ` ${err.status}` : ''}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

const is = (err: unknown, code: string, status?: number) => err instanceof BridgeError && err.code === code && (status === undefined || err.status === status);

async function checkMass(config: BridgeConfig, mass: MassClient, simulator: boolean): Promise<Finding[]> {
  const root = config.global.apiRoot;
  const uuid = config.mass.uuid;
  let instance: AnalysisSystemInstance;
  try {
    instance = await mass.getInstance(uuid);
  } catch (err) {
    if (is(err, 'AUTH')) {
      const where = simulator
        ? 'the MASS simulator has no web UI: copy the instance key again from the terminal running `mass-al-bridge simulate` (or the file its --write-config wrote)'
        : 'copy the instance key again from the MASS web UI (webui/admin/analysis_systems/)';
      return [{ ok: false, what: `MASS at ${root} refused the instance key (403)`, hint: `${where}; MASS answers 403 to every auth problem` }];
    }
    if (is(err, 'NOT_FOUND')) return [{ ok: false, what: `MASS at ${root} knows no analysis-system instance ${uuid}`, hint: 'create it in the MASS web UI or with `mass-al-bridge register`, or fix [AssemblylineAnalysis] UUID' }];
    const tls = tlsFailureCode(err);
    if (tls) {
      // MASS answered the TLS handshake, so it is up: the certificate check is a configuration matter.
      const { what, fix } = describeTlsFailure(tls, 'mass');
      return [{ ok: false, what: `MASS at ${root} cannot be used: ${what}`, hint: fix }];
    }
    return [{ ok: false, what: `MASS at ${root} cannot be used: ${describe(err)}`, hint: 'check [GLOBAL] ServerURL and APIEndpoint, and that MASS is up' }];
  }
  const findings: Finding[] = [{ ok: true, what: `MASS at ${root} accepts the instance key` }];
  findings.push(checkOrigin(config, instance.url));
  try {
    const pending = await mass.poll(uuid);
    const seen = instance.last_seen ? `last poll before this check ${instance.last_seen}` : 'never polled before';
    findings.push({ ok: true, what: `the key belongs to instance ${uuid} (${seen}); ${pending.length} scheduled analyses pending` });
  } catch (err) {
    if (is(err, 'NOT_FOUND')) {
      findings.push({ ok: false, what: `the instance key does not belong to instance ${uuid} (the poll answers 404)`, hint: 'use the UUID of the instance whose key you copied' });
    } else {
      findings.push({ ok: false, what: `polling MASS failed: ${describe(err)}`, hint: 'a normal user key gets 403 on the poll: use the instance key' });
    }
  }
  try {
    const system = await mass.getAnalysisSystem(config.mass.systemName);
    const same = sameMassUrl(instance.analysis_system, system.url);
    findings.push(
      same
        ? { ok: true, what: `instance ${uuid} belongs to analysis system '${system.identifier_name}' (tag filter: ${system.tag_filter_expression || '(empty: every sample)'})` }
        : { ok: false, what: `instance ${uuid} belongs to ${instance.analysis_system}, not to analysis system '${config.mass.systemName}'`, hint: 'fix [AssemblylineAnalysis] SystemName or UUID' },
    );
  } catch (err) {
    findings.push({ ok: false, what: `analysis system '${config.mass.systemName}' cannot be read: ${describe(err)}`, hint: 'fix [AssemblylineAnalysis] SystemName' });
  }
  return findings;
}

/** One more identity ([AssemblylineAnalysis:NAME]): its key must poll its UUID, an instance of the same analysis system. */
async function checkIdentity(config: BridgeConfig, identity: MassIdentityConfig, mass: MassClient): Promise<Finding[]> {
  const section = `[AssemblylineAnalysis:${identity.name}]`;
  let pending: number;
  try {
    pending = (await mass.poll(identity.uuid)).length;
  } catch (err) {
    if (is(err, 'NOT_FOUND')) {
      // A key pasted from another identity's section: its UUID is already taken, so the fix is the key, not the UUID.
      const owner = identity.apiKey === config.mass.apiKey ? '[AssemblylineAnalysis]' : (config.mass.identities ?? []).find((o) => o.name !== identity.name && o.apiKey === identity.apiKey);
      const hint = owner
        ? `${section} has the key of ${typeof owner === 'string' ? owner : `[AssemblylineAnalysis:${owner.name}]`}: copy the key of instance ${identity.uuid} into ${section} mass api key (each identity needs its own instance's key)`
        : `use in ${section} the UUID of the instance whose key you copied, or create it with \`mass-al-bridge register --instances\``;
      return [{ ok: false, what: `identity ${identity.name}: the key does not belong to instance ${identity.uuid} (the poll answers 404)`, hint }];
    }
    if (is(err, 'AUTH')) return [{ ok: false, what: `identity ${identity.name}: MASS refused its instance key (403)`, hint: `copy the instance key again into ${section} mass api key` }];
    return [{ ok: false, what: `identity ${identity.name}: polling MASS failed: ${describe(err)}`, hint: `check ${section}` }];
  }
  const findings: Finding[] = [{ ok: true, what: `identity ${identity.name}: the key belongs to instance ${identity.uuid}; ${pending} scheduled analyses pending` }];
  try {
    const [instance, system] = await Promise.all([mass.getInstance(identity.uuid), mass.getAnalysisSystem(config.mass.systemName)]);
    if (!sameMassUrl(instance.analysis_system, system.url)) {
      findings.push({ ok: false, what: `identity ${identity.name}: instance ${identity.uuid} belongs to ${instance.analysis_system}, not to analysis system '${config.mass.systemName}'`, hint: `fix ${section} UUID` });
    }
  } catch (err) {
    findings.push({ ok: false, what: `identity ${identity.name}: its instance or analysis system cannot be read: ${describe(err)}`, hint: `check ${section}` });
  }
  return findings;
}

/**
 * MASS builds every URL it hands out from the Host header it receives. Behind a reverse proxy that
 * rewrites Host those URLs name an internal origin, to which the bridge never sends its key: every job
 * would end held. Such an origin must be declared in [GLOBAL] ServerAliases.
 */
function checkOrigin(config: BridgeConfig, instanceUrl: string | undefined): Finding {
  let named: string;
  try {
    named = new URL(instanceUrl ?? '').origin;
  } catch {
    return { ok: false, what: `MASS answered with an instance URL that is not absolute: ${JSON.stringify(instanceUrl)}`, hint: 'check that [GLOBAL] ServerURL points to MASS' };
  }
  const configured = new URL(config.global.apiRoot).origin;
  if (named === configured) return { ok: true, what: `MASS names its objects under ${configured}, the origin of ServerURL` };
  if (config.global.serverAliases.includes(named)) {
    return { ok: true, what: `MASS names its objects under ${named}, an alias of ServerURL ([GLOBAL] ServerAliases); the bridge requests them through ${configured}` };
  }
  return {
    ok: false,
    what: `MASS names its objects under ${named}, not under ${configured}: the bridge will not send its key there, so every job would end held`,
    hint: `if ${named} is this MASS behind a reverse proxy that rewrites the Host header, add it to [GLOBAL] ServerAliases, or make the proxy pass the Host header on`,
  };
}

async function checkAssemblyline(config: BridgeConfig, al: AssemblylineClient): Promise<Finding[]> {
  const url = config.assemblyline.url;
  const queue = config.assemblyline.notificationQueue;
  const findings: Finding[] = [];
  try {
    if (!al.checkQueueAccess) throw new Error('this Assemblyline client cannot check queue access');
    await al.checkQueueAccess(queue);
    findings.push({ ok: true, what: `Assemblyline at ${url} accepts user '${config.assemblyline.user}' for ingest and notification queue '${queue}' (nothing was read from it)` });
  } catch (err) {
    const tls = tlsFailureCode(err);
    if (tls) {
      const { what, fix } = describeTlsFailure(tls, 'assemblyline');
      findings.push({ ok: false, what: `Assemblyline at ${url} cannot be used: ${what}`, hint: fix });
      return findings;
    }
    if (is(err, 'AUTH', 401)) findings.push({ ok: false, what: `Assemblyline at ${url} refused the credentials: ${describe(err)}`, hint: 'check [Assemblyline] User and APIKey (<key name>:<secret>), or Password; a client certificate alone is not an Assemblyline login' });
    else if (is(err, 'AUTH')) findings.push({ ok: false, what: `Assemblyline at ${url} refused the ingest/queue role: ${describe(err)}`, hint: 'the API key needs read and write access (role submission_create)' });
    else findings.push({ ok: false, what: `Assemblyline at ${url} cannot be used: ${describe(err)}`, hint: 'check [Assemblyline] URL, VerifyTLS/CAFile, and that Assemblyline is up' });
    return findings;
  }
  try {
    await al.searchSubmissions('sid:mass-al-bridge-doctor', { rows: 1 });
    findings.push({ ok: true, what: 'Assemblyline lets this user read submissions and results' });
  } catch (err) {
    findings.push({ ok: false, what: `Assemblyline refuses to show submissions: ${describe(err)}`, hint: 'the API key needs read access (role submission_view)' });
  }
  // What ingest will meet: roles, submission profile and its restricted parameters, classification, quotas, dry check.
  for (const f of await checkIngestConfiguration(config, al)) findings.push({ ok: f.ok, what: f.what, hint: f.fix });
  return findings;
}

/** Looks at the ledger without creating anything: a missing StateDir or ledger is a finding, not something to make. */
function checkLedger(config: BridgeConfig): Finding {
  const dir = config.bridge.stateDir;
  const file = join(dir, 'bridge.sqlite');
  let dirStat;
  try {
    dirStat = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, what: `[Bridge] StateDir ${dir} does not exist`, hint: `fix StateDir if it has a typo; for a new installation create it, writable by the bridge's user (mkdir -p ${dir}), or let the first run create it` };
    return { ok: false, what: `[Bridge] StateDir ${dir} cannot be read: ${code ?? describe(err)}`, hint: "give the bridge's user read, write and search permission on StateDir" };
  }
  if (!dirStat.isDirectory()) return { ok: false, what: `[Bridge] StateDir ${dir} is not a directory`, hint: 'point StateDir at a directory' };
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    return { ok: false, what: `[Bridge] StateDir ${dir} is not writable`, hint: "give the bridge's user write permission on StateDir (the ledger and its WAL live there)" };
  }
  if (!existsSync(file)) {
    return {
      ok: false,
      note: true,
      what: `there is no ledger in ${dir} (no bridge.sqlite)`,
      hint: 'a new installation gets its ledger at the first `mass-al-bridge run`; if the bridge has run before, StateDir points at the wrong directory (the ledger is what makes restarts safe: do not start over without it)',
    };
  }
  try {
    const ledger = openLedger(file);
    try {
      if (!ledger.isWritable()) return { ok: false, what: `the ledger ${file} is not writable`, hint: 'check the permissions of [Bridge] StateDir and bridge.sqlite' };
      const counts = ledger.countByState();
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      return { ok: true, what: `the ledger ${file} is usable: ${total} jobs, ${ledger.inFlight()} in flight, ${counts.held} held` };
    } finally {
      ledger.close();
    }
  } catch (err) {
    return { ok: false, what: `the ledger ${file} cannot be opened: ${describe(err)}`, hint: 'check [Bridge] StateDir; restore a backup if the file is damaged (docs/operations.md)' };
  }
}

export async function doctorCommand(opts: DoctorOptions): Promise<number> {
  const { config, out } = opts;
  let mass = opts.mass;
  let al = opts.assemblyline;
  const findings: Finding[] = [];
  try {
    if (!mass) {
      try {
        mass = createMassClient(
          await massClientOptionsFromConfig(config, {
            onInsecure: () => findings.push({ ok: true, what: 'the TLS certificate of MASS is not checked ([AssemblylineAnalysis] VerifyTLS = false)' }),
          }),
        );
      } catch (err) {
        findings.push({ ok: false, what: `the MASS connection cannot be set up: ${describe(err)}`, hint: 'check [AssemblylineAnalysis] CAFile' });
      }
    }
    if (mass) findings.push(...(await checkMass(config, mass, opts.massIsSimulator === true)));
    if (!al) {
      try {
        al = createAssemblylineClient(await assemblylineClientOptionsFromConfig(config.assemblyline));
      } catch (err) {
        findings.push({ ok: false, what: `the Assemblyline connection cannot be set up: ${describe(err)}`, hint: 'check CAFile, ClientCert and ClientKey' });
      }
    }
    if (al) findings.push(...(await checkAssemblyline(config, al)));
    // Every further identity: its own key against its own UUID.
    for (const identity of config.mass.identities ?? []) {
      let own: MassClient | undefined;
      try {
        own = createMassClient(await massClientOptionsFromConfig(config, { apiKey: identity.apiKey }));
        findings.push(...(await checkIdentity(config, identity, own)));
      } catch (err) {
        findings.push({ ok: false, what: `identity ${identity.name}: the MASS connection cannot be set up: ${describe(err)}`, hint: 'check [AssemblylineAnalysis] CAFile' });
      } finally {
        await own?.close().catch(() => undefined);
      }
    }
    findings.push(checkLedger(config));
  } finally {
    if (mass && !opts.mass) await mass.close().catch(() => undefined);
    if (al && !opts.assemblyline) await al.close().catch(() => undefined);
  }
  for (const f of findings) {
    out.write(`[${f.ok ? ' ok ' : f.note ? 'note' : 'FAIL'}] ${f.what}\n`);
    if (!f.ok && f.hint) out.write(`       ${f.note ? 'so' : 'fix'}: ${f.hint}\n`);
  }
  const failed = findings.filter((f) => !f.ok && !f.note).length;
  out.write(failed ? `\n${failed} problem(s) found.\n` : '\nEverything the bridge needs answers as expected.\n');
  return failed ? 1 : 0;
}
