/**
 * The effective configuration every command works with. Loading (INI + env + *_FILE + CLI),
 * validation and masking live in this folder; this file is the shape the rest of the code sees.
 * INI section/key names are given in comments; durations are in seconds unless the name says Ms.
 */
export interface BridgeConfig {
  global: {
    /** [GLOBAL] ServerURL, e.g. http://mass.example.org/ */
    serverUrl: string;
    /** [GLOBAL] APIEndpoint, e.g. api/ ; apiRoot = ServerURL joined with APIEndpoint, always ending with / */
    apiEndpoint: string;
    /** Derived: absolute MASS API root ending with '/'. */
    apiRoot: string;
    /** [GLOBAL] ServerAliases: other origins (scheme://host[:port]) of the same MASS, requested through ServerURL. */
    serverAliases: string[];
    /** [GLOBAL] SleepTime: seconds to wait after an error before the next poll (tutorial semantics). */
    sleepTime: number;
  };
  mass: {
    /** [AssemblylineAnalysis] PollTime (seconds between polls). */
    pollTime: number;
    /** [AssemblylineAnalysis] UUID of this analysis-system instance. */
    uuid: string;
    /** [AssemblylineAnalysis] SystemName (analysis system identifier_name), default 'assemblyline'. */
    systemName: string;
    /** [AssemblylineAnalysis] mass api key (instance key). Secret. */
    apiKey: string;
    /** [AssemblylineAnalysis] Timeout per request, seconds. */
    timeout: number;
    /** [AssemblylineAnalysis] VerifyTLS (default true) */
    verifyTls: boolean;
    /** [AssemblylineAnalysis] CAFile: PEM bundle to trust for MASS. */
    caFile: string;
    /**
     * [AssemblylineAnalysis:NAME] sections: more instances of the analysis system served by this process, in the
     * order written (absent or empty = only the first identity, [AssemblylineAnalysis] UUID + mass api key, named
     * `default`). Every other [AssemblylineAnalysis] key applies to all identities.
     */
    identities?: MassIdentityConfig[];
  };
  assemblyline: {
    /** [Assemblyline] URL, e.g. https://al.example.org */
    url: string;
    /** [Assemblyline] User */
    user: string;
    /** [Assemblyline] APIKey as name:secret. Secret. Empty when password auth is used. */
    apiKey: string;
    /** [Assemblyline] Password (session login instead of API key). Secret. */
    password: string;
    /** [Assemblyline] Auth: apikey | password (default apikey) */
    auth: 'apikey' | 'password';
    /** [Assemblyline] ClientCert / ClientKey: PEM files of a TLS client certificate (mTLS proxy), with either auth. */
    clientCert: string;
    clientKey: string;
    /** [Assemblyline] VerifyTLS (default true) */
    verifyTls: boolean;
    /** [Assemblyline] CAFile: PEM bundle to trust. */
    caFile: string;
    /** [Assemblyline] Timeout per request, seconds. */
    timeout: number;
    /** [Assemblyline] NotificationQueue */
    notificationQueue: string;
    /** [Assemblyline] Priority (2..250; 0 = not sent; 1 is always dropped by AL) */
    priority: number;
    /** [Assemblyline] Classification (empty = server default) */
    classification: string;
    /** [Assemblyline] Services: comma-separated selected services (empty = profile default) */
    services: string[];
    /** [Assemblyline] DeepScan */
    deepScan: boolean;
    /** [Assemblyline] TTL days (0 = server default) */
    ttl: number;
    /** [Assemblyline] NeverDrop (false = sent only on the re-ingest of a dropped file) */
    neverDrop: boolean;
    /** [Assemblyline] HashFirst: ingest by sha256 before downloading and uploading the sample (default true). */
    hashFirst: boolean;
    /** [Assemblyline] IgnoreCache: every ingest bypasses AL's result cache (default false). */
    ignoreCache: boolean;
    /** [Assemblyline] Metadata: key=value pairs sent with every ingest. */
    metadata: Record<string, string>;
    /** [Assemblyline] BridgeMetadata: also send the bridge's own correlation keys (default true). */
    bridgeMetadata: boolean;
    /** [Assemblyline] SubmissionProfile (empty = none) */
    submissionProfile: string;
    /** [Assemblyline] IngestType, default MASS */
    ingestType: string;
    /** [Assemblyline] UIURL: base for links into the Assemblyline UI (default = URL) */
    uiUrl: string;
    /** [Assemblyline] MaxConcurrentCalls: stay under AL's per-user quota of 10 (default 8) */
    maxConcurrentCalls: number;
    /** [Assemblyline] MaxFileSize bytes AL accepts (default 104857600) */
    maxFileSize: number;
  };
  bridge: {
    /** [Bridge] StateDir: the ledger (bridge.sqlite) lives here. */
    stateDir: string;
    /** [Bridge] Concurrency: parallel download/upload/collect steps. */
    concurrency: number;
    /** [Bridge] MaxInFlight: jobs claimed but not yet reported; claiming stops at this number. */
    maxInFlight: number;
    /** [Bridge] MaxFileSize bytes; larger samples get an error report without upload. */
    maxFileSize: number;
    /** [Bridge] ResultDeadline seconds: no notification after this long → reconcile. */
    resultDeadline: number;
    /** [Bridge] QueuePageSize: page_size for get_message_list. */
    queuePageSize: number;
    /** [Bridge] QueuePollTime seconds between notification-queue reads when idle. */
    queuePollTime: number;
    /** [Bridge] QueueReadsPerMinute: sustained notification-queue read budget (bursts of a sixth of it); absent = 600. */
    queueReadsPerMinute?: number;
    /** [Bridge] MaxAttempts: ingest attempts (Skipped, lost notification, cache gone) before an error report. */
    maxAttempts: number;
    /** [Bridge] RetryBaseDelay seconds for exponential backoff (p-retry minTimeout). */
    retryBaseDelay: number;
    /** [Bridge] RetryMaxDelay seconds (p-retry maxTimeout). */
    retryMaxDelay: number;
    /** [Bridge] StepRetries: attempts of one transient-failing upstream call. */
    stepRetries: number;
    /** [Bridge] OutageBudget seconds: how long a step waits with backoff for an upstream that is down or refuses the credentials. */
    outageBudget: number;
    /** [Bridge] GracePeriod seconds for SIGTERM. */
    gracePeriod: number;
    /** [Bridge] RetainDays: the event history of finished jobs and processed notifications are deleted after this many days (0 = keep for ever). */
    retainDays: number;
    /** [Bridge] ReanalyseOwnSamples: re-ingest files the bridge itself submitted to MASS (default false). */
    reanalyseOwnSamples: boolean;
    /** [Bridge] InstanceName: correlation metadata sent to AL (default hostname-uuid prefix). */
    instanceName: string;
    /** [Bridge] LogLevel */
    logLevel: string;
  };
  report: {
    /** [Report] Tags: tag families put on the MASS sample: verdict,family,attack,score,heuristic */
    tagKinds: string[];
    /** [Report] MaxTags */
    maxTags: number;
    /** [Report] TagPrefix, default 'al:' */
    tagPrefix: string;
    /** [Report] MaxSectionBody characters of a section body before it is trimmed. */
    maxSectionBody: number;
    /** [Report] RelatedTLP: tlp_level of samples the bridge creates (default 0). */
    relatedTlp: number;
    /** [Report] ExtractedFiles: submit extracted files to MASS (default true). */
    extractedFiles: boolean;
    /** [Report] ExtractedRelations: parent_relation values that count (default EXTRACTED,DYNAMIC,MEMDUMP,DOWNLOADED). */
    extractedRelations: string[];
    /** [Report] MaxDepth of extracted files (default 3) */
    maxDepth: number;
    /** [Report] MaxExtracted files per report (default 50) */
    maxExtracted: number;
    /** [Report] MaxExtractedSize bytes per extracted file (default 50 MiB) */
    maxExtractedSize: number;
    /** [Report] NetworkIOCs: submit IOCs as samples (default true) */
    networkIocs: boolean;
    /** [Report] StaticIOCs: which network.static.* types also become samples: subset of ip,domain,uri (default none) */
    staticIocs: Array<'ip' | 'domain' | 'uri'>;
    /** [Report] MaxIOCs per report (default 200) */
    maxIocs: number;
    /** [Report] IOCMinVerdict: lowest summary level of a network IOC that is related (default suspicious). */
    iocMinVerdict: 'info' | 'suspicious' | 'malicious';
  };
  api: {
    /** [API] Listen host:port, default 127.0.0.1:8080 */
    listen: string;
    host: string;
    port: number;
    /** [API] Token (bearer for write routes; empty = write routes off). Secret. */
    token: string;
    /** [API] ReadAuth: none (read routes open, default) | token (read routes need ReadToken or Token). */
    readAuth: 'none' | 'token';
    /** [API] ReadToken: bearer for read routes only; set = read auth on. Secret. */
    readToken: string;
  };
}

/** One more identity (instance of the analysis system on MASS) from an `[AssemblylineAnalysis:NAME]` section. */
export interface MassIdentityConfig {
  /** NAME as written in the section header (letters, digits, '-' and '_'); `default` is the first identity's. */
  name: string;
  /** UUID of the instance on MASS. */
  uuid: string;
  /** Its instance API key. Secret. */
  apiKey: string;
}
