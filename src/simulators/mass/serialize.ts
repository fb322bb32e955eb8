import type { AnalysisRequest, AnalysisSystem, AnalysisSystemInstance, MassStore, Report, Sample, SampleRelation, ScheduledAnalysis, Seconds } from './store.js';

/** `YYYY-MM-DDTHH:MM:SS+00:00`, as MASS writes every timestamp. */
export function formatTimestamp(s: Seconds | null): string | null {
  if (s === null) return null;
  return `${new Date(s * 1000).toISOString().slice(0, 19)}+00:00`;
}

const seg = (v: string): string => encodeURIComponent(v);

/** Builds absolute URLs from the request's API root (which MASS derives from the Host header). */
export class Urls {
  constructor(readonly api: string) {}
  system(name: string): string {
    return `${this.api}analysis_system/${seg(name)}/`;
  }
  instance(uuid: string): string {
    return `${this.api}analysis_system_instance/${seg(uuid)}/`;
  }
  sample(id: string): string {
    return `${this.api}sample/${id}/`;
  }
  scheduled(id: string): string {
    return `${this.api}scheduled_analysis/${id}/`;
  }
  request(id: string): string {
    return `${this.api}analysis_request/${id}/`;
  }
  report(id: string): string {
    return `${this.api}report/${id}/`;
  }
  relation(id: string): string {
    return `${this.api}sample_relation/${id}/`;
  }
}

export class Serializer {
  readonly urls: Urls;
  constructor(
    private readonly store: MassStore,
    api: string,
  ) {
    this.urls = new Urls(api);
  }

  private systemUrl(systemId: string): string | null {
    const system = this.store.systems.get(systemId);
    return system ? this.urls.system(system.identifier_name) : null;
  }

  system(s: AnalysisSystem): Record<string, unknown> {
    return {
      id: s.id,
      identifier_name: s.identifier_name,
      information_text: s.information_text,
      tag_filter_expression: s.tag_filter_expression,
      url: this.urls.system(s.identifier_name),
      verbose_name: s.verbose_name,
    };
  }

  instance(i: AnalysisSystemInstance): Record<string, unknown> {
    return {
      analysis_system: this.systemUrl(i.systemId),
      id: i.id,
      is_online: this.store.isOnline(i),
      last_seen: formatTimestamp(i.last_seen),
      scheduled_analyses_count: this.store.scheduled.countFor(i.id),
      url: this.urls.instance(i.uuid),
      uuid: i.uuid,
    };
  }

  scheduled(s: ScheduledAnalysis): Record<string, unknown> {
    const instance = this.store.instances.get(s.instanceId);
    return {
      analysis_scheduled: formatTimestamp(s.analysis_scheduled),
      analysis_system_instance: instance ? this.urls.instance(instance.uuid) : null,
      id: s.id,
      priority: s.priority,
      sample: this.urls.sample(s.sampleId),
      url: this.urls.scheduled(s.id),
    };
  }

  request(r: AnalysisRequest): Record<string, unknown> {
    return {
      analysis_requested: formatTimestamp(r.analysis_requested),
      analysis_system: this.systemUrl(r.systemId),
      id: r.id,
      priority: r.priority,
      sample: this.urls.sample(r.sampleId),
      url: this.urls.request(r.id),
    };
  }

  sample(s: Sample): Record<string, unknown> {
    const out: Record<string, unknown> = {
      _cls: s.cls,
      delivery_date: formatTimestamp(s.delivery_date),
      dispatched_to: s.dispatched_to.map((id) => this.systemUrl(id)).filter((u) => u !== null),
      first_seen: formatTimestamp(s.first_seen),
      id: s.id,
      tags: [...s.tags],
      tlp_level: s.tlp_level,
      url: this.urls.sample(s.id),
    };
    if (s.file) {
      Object.assign(out, {
        file: `${this.urls.sample(s.id)}download/`,
        file_names: [...s.file.file_names],
        file_size: s.file.file_size,
        magic_string: s.file.magic_string,
        md5sum: s.file.md5sum,
        mime_type: s.file.mime_type,
        sha1sum: s.file.sha1sum,
        sha256sum: s.file.sha256sum,
        sha512sum: s.file.sha512sum,
        shannon_entropy: s.file.shannon_entropy,
        ssdeep_hash: s.file.ssdeep_hash,
      });
    }
    if (s.cls === 'Sample.FileSample.ExecutableBinarySample') {
      Object.assign(out, { filesystem_events: [], imports: [], registry_events: [], resources: [], sections: [], strings: [] });
    }
    if (s.ip_address !== undefined) out.ip_address = s.ip_address;
    if (s.domain !== undefined) out.domain = s.domain;
    if (s.uri !== undefined) out.uri = s.uri;
    return out;
  }

  report(r: Report): Record<string, unknown> {
    const objects = (kind: 'json_report_object' | 'raw_report_object', map: Map<string, Buffer>): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const key of map.keys()) out[key] = `${this.urls.report(r.id)}${kind}/${seg(key)}/`;
      return out;
    };
    return {
      additional_metadata: r.additional_metadata,
      analysis_date: formatTimestamp(r.analysis_date),
      analysis_system: this.systemUrl(r.systemId),
      error_message: r.error_message,
      id: r.id,
      json_report_objects: objects('json_report_object', r.json_report_objects),
      raw_report_objects: objects('raw_report_object', r.raw_report_objects),
      sample: this.urls.sample(r.sampleId),
      status: r.status,
      tags: [...r.tags],
      upload_date: formatTimestamp(r.upload_date),
      url: this.urls.report(r.id),
    };
  }

  relation(r: SampleRelation): Record<string, unknown> {
    const out: Record<string, unknown> = {
      _cls: r.cls,
      id: r.id,
      other: this.urls.sample(r.otherId),
      sample: this.urls.sample(r.sampleId),
      url: this.urls.relation(r.id),
    };
    if (r.match !== undefined) out.match = r.match;
    return out;
  }
}
