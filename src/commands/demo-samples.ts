/**
 * The demo's seeded samples. Each file carries an `AL-SIM:` directive that tells the Assemblyline
 * simulator what its analysis produces (see docs/simulators-assemblyline.md).
 */
export interface DemoSample {
  /** Shown in the summary table. */
  label: string;
  fileName: string;
  content: string | Buffer;
  tlpLevel?: number;
  /** What an operator should expect to see. */
  expect: string;
}

const directive = (scenario: unknown) => `AL-SIM: ${JSON.stringify(scenario)}`;

export function demoSamples(maxFileSize: number): DemoSample[] {
  return [
    {
      label: 'dropper',
      fileName: 'invoice_2026-03.exe',
      content: `MZ demo dropper\n${directive({
        score: 1530,
        families: ['AGENTTESLA'],
        attack: ['T1055', 'T1071'],
        extracted: [
          {
            name: 'stage2.dll',
            relation: 'EXTRACTED',
            scenario: { score: 2000, families: ['AGENTTESLA'], attack: ['T1555'], iocs: [{ type: 'network.static.uri', value: 'http://c2.example.net/gate.php' }] },
          },
          { name: 'wupdsvc.exe', relation: 'DYNAMIC' },
        ],
        supplementary: [{ name: 'cape_report.zip' }],
        iocs: [
          { type: 'network.dynamic.ip', value: '203.0.113.45' },
          { type: 'network.dynamic.domain', value: 'update.example.com' },
          { type: 'network.dynamic.uri', value: 'http://update.example.com/payload.bin?id=7' },
          { type: 'network.dynamic.domain', value: 'time.windows.com', safelisted: true },
        ],
      })}\n`,
      expect: 'malicious; 2 extracted files dropped-by, IP/domain/URI relations',
    },
    {
      label: 'macro document',
      fileName: 'quote.docm',
      content: `demo macro document\n${directive({
        score: 700,
        attack: ['T1204'],
        extracted: [{ name: 'macro.vbs', relation: 'EXTRACTED' }],
        iocs: [{ type: 'network.dynamic.domain', value: 'cdn.example.org' }],
      })}\n`,
      expect: 'highly suspicious; one extracted macro',
    },
    {
      label: 'beacon',
      fileName: 'beacon.exe',
      content: `MZ demo beacon\n${directive({
        score: 1000,
        families: ['COBALTSTRIKE'],
        iocs: [
          { type: 'network.dynamic.ip', value: '198.51.100.23' },
          { type: 'network.dynamic.uri', value: 'https://198.51.100.23/submit.php' },
        ],
      })}\n`,
      expect: 'malicious; contacted IP and retrieved URI',
    },
    { label: 'clean pdf', fileName: 'brochure.pdf', content: '%PDF-1.4\n% a harmless demo document\n', expect: 'info, no relations' },
    { label: 'text note', fileName: 'notes.txt', content: 'just some notes, nothing to see\n', expect: 'info' },
    {
      label: 'service errors',
      fileName: 'broken.js',
      content: `var demo = 1;\n${directive({ score: 300, service_errors: [{ service: 'MetaDefender', status: 'FAIL_RECOVERABLE', message: 'TASK PRE-EMPTED' }] })}\n`,
      expect: 'suspicious, service error listed in the report',
    },
    {
      label: 'skipped once',
      fileName: 'busy-day.bin',
      content: `demo sample dropped under load\n${directive({ score: 100, failure: 'Skipped', failure_times: 1 })}\n`,
      expect: 'Skipped by Assemblyline, re-ingested with never_drop',
    },
    {
      label: 'lost notification',
      fileName: 'lost.bin',
      content: `demo sample whose notification is lost\n${directive({ score: 50, lose_notification_times: 1 })}\n`,
      expect: 'found again by the reconciler after ResultDeadline',
    },
    {
      label: 'oversize',
      fileName: 'disk-image.iso',
      content: Buffer.alloc(maxFileSize + 1024, 0x41),
      expect: 'error report: larger than MaxFileSize, never uploaded',
    },
    {
      label: 'TLP:AMBER',
      fileName: 'partner-intel.doc',
      content: 'confidential demo sample\n',
      tlpLevel: 2,
      expect: 'error report: invisible to the instance (TLP above 0)',
    },
  ];
}
