import type { FastifyReply } from 'fastify';
import { sortedJson } from './util.js';

/** Every JSON answer is an envelope with sorted keys and api_status_code == HTTP status. */
export function sendEnvelope(reply: FastifyReply, version: string, status: number, response: unknown, message = ''): FastifyReply {
  return reply
    .code(status)
    .type('application/json')
    .send(sortedJson({ api_error_message: message, api_response: response, api_server_version: version, api_status_code: status }));
}

/** What the 401 handler puts in api_response: the login options of the deployment. */
export const LOGIN_OPTIONS = { allow_saml_login: false, allow_signup: false, allow_userpass_login: true };

/** What the 403 handler puts in api_response. */
export const FORBIDDEN_CONFIG = {
  auth: { allow_2fa: true, allow_apikeys: true, allow_security_tokens: true },
  ui: { allow_url_submissions: true, read_only: false, tos: false, tos_lockout: false, tos_lockout_notify: false },
};

/** The 401 handler clears both cookies (Flask session and XSRF-TOKEN). */
export function clearCookies(reply: FastifyReply): void {
  reply.header('set-cookie', [
    'session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/; SameSite=None',
    'XSRF-TOKEN=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/',
  ]);
}

/** Flask's HTML 405 page: not an envelope. */
export const METHOD_NOT_ALLOWED_HTML = '<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n';
