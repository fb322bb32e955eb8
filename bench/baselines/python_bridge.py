#!/usr/bin/env python3
"""A pipelined MASS -> Assemblyline bridge in plain Python, the baseline of bench/real-mass.ts.

Written the way the MASS analysis-system tutorial and the Assemblyline REST API suggest, with nothing
tuned: worker threads, the sample read into memory (as the tutorial's temporary file does), an
Assemblyline ingest with a notification queue, a queue reader that sleeps 1 s when the queue is empty,
and reports sent back by worker threads. Only `requests` beyond the standard library.

Reads its settings from the environment (never printed): MASS_API (API root, ending in /),
MASS_INSTANCE_UUID, MASS_INSTANCE_KEY, AL_URL, AL_USER, AL_APIKEY, N (reports to send), WORKERS (4).
Prints one JSON line when N reports are in: {"reports", "queue_reads", "seconds"}. Exits 1 on any
upstream failure (it has no retries), 2 after BRIDGE_MAX_S (default 300) seconds.
"""
import json
import os
import queue
import sys
import threading
import time
import uuid

import requests

MASS_API = os.environ['MASS_API']
UUID = os.environ['MASS_INSTANCE_UUID']
MASS_HEADERS = {'Authorization': 'APIKEY ' + os.environ['MASS_INSTANCE_KEY']}
AL_URL = os.environ['AL_URL'].rstrip('/')
AL_HEADERS = {'X-USER': os.environ['AL_USER'], 'X-APIKEY': os.environ['AL_APIKEY']}
N = int(os.environ.get('N', '100'))
WORKERS = int(os.environ.get('WORKERS', '4'))
MAX_S = float(os.environ.get('BRIDGE_MAX_S', '300'))
QUEUE_SLEEP_S = 1.0
MASS_POLL_S = 1.0
NQ = 'python-bridge-' + uuid.uuid4().hex[:8]

local = threading.local()
lock = threading.Lock()
state = {'reports': 0, 'queue_reads': 0, 'failure': None}
seen = set()
pending = {}  # ingest_id -> scheduled analysis
to_ingest = queue.Queue()
to_report = queue.Queue()
done = threading.Event()


def session():
    """One requests.Session per thread (keep-alive; Session is not thread-safe)."""
    if not hasattr(local, 's'):
        local.s = requests.Session()
    return local.s


def checked(resp):
    if resp.status_code >= 400:
        raise RuntimeError('%s %s answered %d: %s' % (resp.request.method, resp.url, resp.status_code, resp.text[:200]))
    return resp


def fail(err):
    with lock:
        if state['failure'] is None:
            state['failure'] = str(err)
    done.set()


def guarded(loop):
    """Runs a loop; any exception ends the run (this baseline has no retries)."""
    def run():
        try:
            loop()
        except Exception as err:  # noqa: BLE001
            fail(err)
    return run


def poller():
    """Asks MASS for scheduled analyses, like the tutorial's loop, and hands new ones to the ingest workers."""
    url = '%sanalysis_system_instance/%s/scheduled_analyses/' % (MASS_API, UUID)
    while not done.is_set():
        for sa in checked(session().get(url, headers=MASS_HEADERS, timeout=60)).json()['results']:
            if sa['url'] not in seen:
                seen.add(sa['url'])
                to_ingest.put(sa)
        done.wait(MASS_POLL_S)


def ingest_worker():
    """Sample document, download into memory, Assemblyline ingest with our notification queue."""
    while not done.is_set():
        try:
            sa = to_ingest.get(timeout=0.2)
        except queue.Empty:
            continue
        try:
            s = session()
            sample = checked(s.get(sa['sample'], headers=MASS_HEADERS, timeout=60)).json()
            data = checked(s.get(sample['file'], headers=MASS_HEADERS, timeout=60)).content
            name = (sample.get('file_names') or [sample['id']])[0]
            options = {
                'name': name,
                'notification_queue': NQ,
                'metadata': {'mass_scheduled_analysis': sa['id']},
                'params': {'priority': 150, 'description': 'MASS sample ' + sample['id']},
            }
            answer = checked(s.post(AL_URL + '/api/v4/ingest/', headers=AL_HEADERS, timeout=60,
                                    files={'json': (None, json.dumps(options)), 'bin': (name, data)})).json()
            with lock:
                pending[answer['api_response']['ingest_id']] = sa
        except Exception as err:  # noqa: BLE001 (no retries: the run fails)
            fail(err)


def queue_reader():
    """Reads the notification queue; sleeps 1 s whenever it is empty."""
    url = '%s/api/v4/ingest/get_message_list/%s/?page_size=100' % (AL_URL, NQ)
    while not done.is_set():
        messages = checked(session().get(url, headers=AL_HEADERS, timeout=60)).json()['api_response']
        with lock:
            state['queue_reads'] += 1
        for m in messages:
            with lock:
                sa = pending.pop(m['ingest_id'], None)
            if sa is not None:
                to_report.put((sa, m))
        if not messages:
            done.wait(QUEUE_SLEEP_S)


def report_worker():
    """Reads the submission's results and sends them to MASS as the report."""
    while not done.is_set():
        try:
            sa, message = to_report.get(timeout=0.2)
        except queue.Empty:
            continue
        try:
            s = session()
            sid = message['submission']['sid']
            full = checked(s.get('%s/api/v4/submission/full/%s/' % (AL_URL, sid), headers=AL_HEADERS, timeout=60)).json()['api_response']
            max_score = full.get('max_score', message.get('score'))
            metadata = {
                'analysis_date': time.strftime('%Y-%m-%dT%H:%M:%S+00:00', time.gmtime()),
                'tags': ['al:score:%d' % (max_score or 0)],
                'additional_metadata': {'assemblyline': {'sid': sid, 'max_score': max_score}},
            }
            files = {
                'metadata': (None, json.dumps(metadata)),
                'al_result': ('al_result.json', json.dumps(full), 'application/json'),
            }
            checked(s.post(sa['url'] + 'submit_report/', headers=MASS_HEADERS, files=files, timeout=60))
            with lock:
                state['reports'] += 1
                if state['reports'] >= N:
                    done.set()
        except Exception as err:  # noqa: BLE001
            fail(err)


def main():
    started = time.monotonic()
    threads = [threading.Thread(target=guarded(poller), daemon=True), threading.Thread(target=guarded(queue_reader), daemon=True)]
    threads += [threading.Thread(target=ingest_worker, daemon=True) for _ in range(WORKERS)]
    threads += [threading.Thread(target=report_worker, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    if not done.wait(MAX_S):
        sys.stderr.write('python_bridge: %d reports after %.0f s; stopping\n' % (state['reports'], MAX_S))
        return 2
    if state['failure'] is not None:
        sys.stderr.write('python_bridge: %s\n' % state['failure'])
        return 1
    print(json.dumps({'reports': state['reports'], 'queue_reads': state['queue_reads'], 'seconds': time.monotonic() - started}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
