/** Shared helpers for the benchmarks: child processes, memory sampling, formatting. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Repository root: children run with it as cwd so `--import tsx` resolves from its node_modules. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** One line of the final table: baseline vs measured, and the ratio measured/baseline (as the bench defines it). */
export interface TableRow {
  bench: string;
  baseline: string;
  measured: string;
  ratio: string;
  /** The target the bench must meet, in words (e.g. `≥ 0.80×`). */
  target: string;
  /** Whether the target was met; a missed target makes the run exit 1. */
  met: boolean;
}

export interface BenchOutcome {
  rows: TableRow[];
  /** False when a correctness check inside the bench failed (the run then exits non-zero). */
  ok: boolean;
}

export type Say = (line?: string) => void;

/** `--quick`: small sizes for a regression check (memory bound and the null-bridge ratio), about half a minute. */
export const QUICK = process.argv.includes('--quick');

export function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(bytes >= 100 * 1048576 ? 0 : 1)} MiB`;
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return 'n/a';
  return `${r >= 10 ? r.toFixed(1) : r >= 0.1 ? r.toFixed(2) : r.toFixed(3)}×`;
}

export function fmtNum(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function pollUntil<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${new URL(url).pathname} answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

export function postJson<T>(url: string, body: unknown): Promise<T> {
  return getJson<T>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

// ------------------------------------------------------------------ child processes

/** Every child this process started, so a watchdog can end them by pid. */
const children = new Set<ChildProcess>();

export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/**
 * Runs `node [nodeArgs] --import tsx <script> [args]` and resolves with the first stdout line parsed as JSON.
 * The child keeps running (for servers); `stop()` closes its stdin (its cue to shut down) and waits, then kills.
 */
export async function startTsChild<T>(
  script: string,
  args: string[],
  opts: { env?: Record<string, string>; nodeArgs?: string[]; readyTimeoutMs: number },
): Promise<{ value: T; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  const exited = once(child, 'exit').then(() => void children.delete(child));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
  };
  try {
    const lines = createInterface({ input: child.stdout! });
    const first = new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code, signal) => reject(new Error(`${script} exited (${code ?? signal}) before answering`)));
      child.once('error', reject);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${script} did not answer within ${opts.readyTimeoutMs} ms`)), opts.readyTimeoutMs);
    });
    const line = await Promise.race([first, timeout]).finally(() => clearTimeout(timer));
    return { value: JSON.parse(line) as T, child, stop };
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
}

// ------------------------------------------------------------------ simulators in a child process

export interface SeededSample {
  url: string;
  sha256: string;
  size: number;
}

/** What `bench/sim-server.ts --sim=mass` prints on stdout (loopback simulator keys, never printed by the bench). */
export interface MassSimInfo {
  massOrigin: string;
  adminKey: string;
  userKey: string;
  instanceUuid: string;
  instanceKey: string;
  samples: Record<string, SeededSample>;
  /** Instances beyond the seeded one (`--instances`), with their keys. */
  extraInstances: Array<{ uuid: string; key: string }>;
}

/** What `bench/sim-server.ts --sim=al` prints on stdout. */
export interface AlSimInfo {
  alOrigin: string;
  alUser: string;
  alApiKey: string;
}

export type SimServerInfo = MassSimInfo & AlSimInfo;

export interface SimServerOptions {
  alDelayMs: number;
  /** Seed one large file sample of this many MiB (key `big`) plus a 64 KiB `warmup` sample. */
  fileMb?: number;
  /** The big sample's bytes: `generated(fileMb, seedHex)` (default: a random seed). */
  seedHex?: string;
  /** Instances of the analysis system (default 1). */
  instances?: number;
  /** Concurrent submissions Assemblyline allows the bridge's user (default 0 = unlimited). */
  asyncQuota?: number;
}

/**
 * Starts the MASS simulator and the Assemblyline simulator, each in its own child process (started in parallel).
 * BENCH_SIM_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=prof`) adds node flags to both.
 */
export async function startSimServer(opts: SimServerOptions): Promise<{ info: SimServerInfo; pids: { mass: number; al: number }; stop(): Promise<void> }> {
  const nodeArgs = (process.env.BENCH_SIM_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const fileMb = opts.fileMb ?? 0;
  const started = await Promise.allSettled([
    startTsChild<MassSimInfo>('bench/sim-server.ts', ['--sim=mass', `--file-mb=${fileMb}`, ...(opts.seedHex ? [`--seed=${opts.seedHex}`] : []), `--instances=${opts.instances ?? 1}`], { readyTimeoutMs: 300_000, nodeArgs }),
    startTsChild<AlSimInfo>('bench/sim-server.ts', ['--sim=al', `--al-delay-ms=${opts.alDelayMs}`, `--max-file-mb=${fileMb}`, `--async-quota=${opts.asyncQuota ?? 0}`], { readyTimeoutMs: 60_000, nodeArgs }),
  ]);
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
  };
  const [mass, al] = started;
  if (mass.status === 'rejected' || al.status === 'rejected') {
    await stop();
    throw mass.status === 'rejected' ? mass.reason : (al as PromiseRejectedResult).reason;
  }
  return { info: { ...mass.value.value, ...al.value.value }, pids: { mass: mass.value.child.pid ?? 0, al: al.value.child.pid ?? 0 }, stop };
}

/**
 * CPU time (user + system, seconds) a process has used so far, from /proc/<pid>/stat (Linux); NaN elsewhere.
 * Compared over a run with the wall time, it shows how busy a child was (1.0 = one core all the time).
 */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11], fields[12]: utime, stime in clock ticks (field 14 and 15 of proc(5)); USER_HZ is 100 on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

// ------------------------------------------------------------------ large samples

/**
 * `mb` MiB of incompressible bytes, generated chunk by chunk (never held whole in memory): the AES-256-CTR key
 * stream of `seedHex` (32 bytes), so that two processes given the same seed produce the same bytes.
 */
export function generated(mb: number, seedHex: string): Readable {
  const cipher = createCipheriv('aes-256-ctr', Buffer.from(seedHex, 'hex'), Buffer.alloc(16));
  const zeros = Buffer.alloc(1048576);
  return Readable.from(
    (function* () {
      for (let i = 0; i < mb; i++) yield cipher.update(zeros);
    })(),
  );
}

// ------------------------------------------------------------------ memory

export interface MemSnapshot {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export function memNow(): MemSnapshot {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Samples process.memoryUsage() every `everyMs` and keeps the per-field peaks. */
export function memSampler(everyMs = 20): { stop(): MemSnapshot; samples(): number } {
  const peak = memNow();
  let n = 1;
  const take = (): void => {
    const m = memNow();
    n++;
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.external = Math.max(peak.external, m.external);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
    samples: () => n,
  };
}

/**
 * The end of one bridge run in a benchmark: stops the bridge (2 s grace) and closes its runtime if it was opened,
 * stops the simulators if given, and removes the run's StateDir. Never throws for the bridge's own stop or close.
 */
export async function endBridgeRun(runtime: { bridge: { stop(o: { graceMs: number }): Promise<unknown> }; close(): Promise<unknown> } | null | undefined, stateDir: string, sims?: { stop(): Promise<void> }): Promise<void> {
  if (runtime) {
    await runtime.bridge.stop({ graceMs: 2000 }).catch(() => undefined);
    await runtime.close().catch(() => undefined);
  }
  await sims?.stop();
  await rm(stateDir, { recursive: true, force: true });
}
