/**
 * Prefetch templates → relative FHIR URLs. Pure: the same template and context always give the same URL.
 * https://cds-hooks.hl7.org/2.0/#prefetch-tokens
 */

/** FHIR ids of the current user, one per resource type the spec names a token for. */
export interface PrefetchUserTokens {
  readonly userPractitionerId?: string | undefined;
  readonly userPractitionerRoleId?: string | undefined;
  readonly userPatientId?: string | undefined;
  readonly userRelatedPersonId?: string | undefined;
}

const userTokenByResourceType: Readonly<Record<string, keyof PrefetchUserTokens>> = {
  Practitioner: 'userPractitionerId',
  PractitionerRole: 'userPractitionerRoleId',
  Patient: 'userPatientId',
  RelatedPerson: 'userRelatedPersonId',
};

const userTokenNames: ReadonlySet<string> = new Set(Object.values(userTokenByResourceType));

/** `{{ … }}`, as the spec delimits tokens; the inside is matched loosely so unsupported tokens are found too. */
const tokenPattern = /\{\{\s*([^{}]*?)\s*\}\}/g;
const contextTokenPattern = /^context\.([A-Za-z][A-Za-z0-9_]*)$/;

/**
 * The user tokens that `context.userId` (`ResourceType/id`) fills: `Practitioner/123` gives
 * `userPractitionerId: '123'`. https://cds-hooks.hl7.org/2.0/#prefetch-tokens-identifying-the-user
 */
export function userTokensFromUserId(userId: unknown): PrefetchUserTokens {
  if (typeof userId !== 'string') return {};
  const match = /^([A-Za-z]+)\/([^/]+)$/.exec(userId);
  if (!match) return {};
  const token = userTokenByResourceType[match[1] ?? ''];
  return token === undefined ? {} : { [token]: match[2] };
}

/** The token expressions in a template, e.g. `['context.patientId']`. */
export function prefetchTokens(template: string): string[] {
  return [...template.matchAll(tokenPattern)].map((match) => match[1] ?? '');
}

/** Whether a token is one this filler understands: a top-level context field or a user token. */
export function isSupportedPrefetchToken(token: string): boolean {
  return contextTokenPattern.test(token) || userTokenNames.has(token);
}

function tokenValue(token: string, context: Readonly<Record<string, unknown>>, userTokens: PrefetchUserTokens): string | null {
  const contextField = contextTokenPattern.exec(token)?.[1];
  const value = contextField !== undefined ? context[contextField] : userTokenNames.has(token) ? userTokens[token as keyof PrefetchUserTokens] : undefined;
  // Only string fields are tokens (the hook tables mark objects such as draftOrders "Prefetch Token: No").
  if (typeof value !== 'string' || value === '') return null;
  // A lone "." or ".." would survive encoding and walk up the server's path.
  if (value === '.' || value === '..') return null;
  return value;
}

/**
 * Fills every `{{context.field}}` and `{{userPractitionerId}}`-style token; null when any token cannot be
 * filled (missing or non-string field, unsupported expression), so that key is neither expected nor fetched.
 * Values are percent-encoded as one URI component: in the query so `&`, `=` and `,` stay data, and in the
 * path so a value stays one segment.
 */
export function fillPrefetchTemplate(
  template: string,
  context: Readonly<Record<string, unknown>>,
  userTokens: PrefetchUserTokens = userTokensFromUserId(context['userId']),
): string | null {
  let unfilled = false;
  const filled = template.replace(tokenPattern, (_whole, token: string) => {
    const value = tokenValue(token, context, userTokens);
    if (value === null) {
      unfilled = true;
      return '';
    }
    return encodeURIComponent(value);
  });
  return unfilled ? null : filled;
}
