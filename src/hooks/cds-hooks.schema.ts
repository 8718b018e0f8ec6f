/**
 * CDS Hooks 2.0 request, response and feedback bodies as zod schemas, written after the specification
 * (https://cds-hooks.hl7.org/2.0/) and the hook definitions of the CDS Hooks Library. Requests are read
 * leniently where the spec allows it (unknown fields are dropped) but every string and array is bounded,
 * because the body comes from outside. Responses are strict: they are what we build, so a typo in a card
 * builder fails a test instead of reaching an EHR.
 */
import { z } from 'zod';

/** The hooks this service answers. */
export const hookNames = ['patient-view', 'encounter-start', 'order-select', 'order-sign'] as const;
export type HookName = (typeof hookNames)[number];

export const limits = Object.freeze({
  identifier: 256,
  shortText: 1024,
  url: 2048,
  accessToken: 16384,
  selections: 500,
  draftOrderEntries: 500,
  prefetchKeys: 32,
  prefetchKey: 64,
  summary: 139,
  detail: 10000,
  cards: 50,
  suggestions: 20,
  actions: 50,
  links: 20,
  overrideReasons: 20,
  feedbackItems: 100,
  userComment: 4000,
});

/**
 * A FHIR logical id as EHRs send it. FHIR R4 caps ids at 64 characters, but deployed EHRs send longer
 * ones, so only the character set is enforced; "." and ".." are refused because the id goes into a URL path.
 */
export const fhirIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9\-.]{1,256}$/, 'must be a FHIR id ([A-Za-z0-9-.])')
  .refine((id) => id !== '.' && id !== '..', 'must be a FHIR id');

/** `ResourceType/id`, e.g. `Practitioner/abc` (the format the hook definitions require for userId and selections). */
export const relativeReferenceSchema = z
  .string()
  .max(limits.identifier + 64)
  .regex(/^[A-Z][A-Za-z]{1,63}\/[A-Za-z0-9\-.]{1,256}$/, 'must be ResourceType/id');

/** Any FHIR resource: only `resourceType` is checked here; FHIR → facts reads the rest defensively. */
export const fhirResourceSchema = z.looseObject({
  resourceType: z.string().regex(/^[A-Z][A-Za-z]{1,63}$/, 'must be a FHIR resource type'),
});
export type FhirResourceJson = z.infer<typeof fhirResourceSchema>;

const draftOrdersSchema = z.looseObject({
  resourceType: z.literal('Bundle'),
  entry: z.array(z.looseObject({ resource: fhirResourceSchema.optional() })).max(limits.draftOrderEntries).optional(),
});

/** https://cds-hooks.hl7.org/2.0/#passing-the-access-token-to-the-cds-service */
export const fhirAuthorizationSchema = z.object({
  access_token: z.string().min(1).max(limits.accessToken),
  // The value is fixed to "Bearer"; some clients send it lower-case (RFC 6749 §7.1 makes it case-insensitive).
  token_type: z
    .string()
    .regex(/^bearer$/i, 'must be Bearer')
    .transform(() => 'Bearer' as const),
  expires_in: z.number().int().nonnegative(),
  scope: z.string().min(1).max(limits.shortText * 4),
  subject: z.string().min(1).max(limits.identifier),
  patient: fhirIdSchema.optional(),
});
export type FhirAuthorization = z.infer<typeof fhirAuthorizationSchema>;

/** Context of each hook, after the CDS Hooks Library definitions (https://cds-hooks.org/hooks/). */
export const hookContextSchemas = {
  'patient-view': z.object({
    userId: relativeReferenceSchema,
    patientId: fhirIdSchema,
    encounterId: fhirIdSchema.optional(),
  }),
  'encounter-start': z.object({
    userId: relativeReferenceSchema,
    patientId: fhirIdSchema,
    encounterId: fhirIdSchema,
  }),
  'order-select': z.object({
    userId: relativeReferenceSchema,
    patientId: fhirIdSchema,
    encounterId: fhirIdSchema.optional(),
    selections: z.array(relativeReferenceSchema).max(limits.selections),
    draftOrders: draftOrdersSchema,
  }),
  'order-sign': z.object({
    userId: relativeReferenceSchema,
    patientId: fhirIdSchema,
    encounterId: fhirIdSchema.optional(),
    draftOrders: draftOrdersSchema,
  }),
} as const;

const prefetchSchema = z
  .record(z.string().min(1).max(limits.prefetchKey), fhirResourceSchema.nullable())
  .refine((prefetch) => Object.keys(prefetch).length <= limits.prefetchKeys, `at most ${limits.prefetchKeys} prefetch keys`);

function requestSchemaFor<H extends HookName>(hook: H) {
  return z
    .object({
      hook: z.literal(hook),
      hookInstance: z.guid('must be a UUID'),
      fhirServer: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(limits.url).optional(),
      fhirAuthorization: fhirAuthorizationSchema.optional(),
      context: hookContextSchemas[hook],
      prefetch: prefetchSchema.optional(),
    })
    .refine((request) => request.fhirAuthorization === undefined || request.fhirServer !== undefined, {
      // https://cds-hooks.hl7.org/2.0/#http-request-1: fhirServer is REQUIRED when fhirAuthorization is given.
      message: 'fhirServer is required when fhirAuthorization is given',
      path: ['fhirServer'],
    });
}

/** The request body of each hook, to validate a POST to a service whose hook is known. */
export const hookRequestSchemas = {
  'patient-view': requestSchemaFor('patient-view'),
  'encounter-start': requestSchemaFor('encounter-start'),
  'order-select': requestSchemaFor('order-select'),
  'order-sign': requestSchemaFor('order-sign'),
} as const;

/** Any hook request, discriminated by `hook`. */
export const hookRequestSchema = z.discriminatedUnion('hook', [
  hookRequestSchemas['patient-view'],
  hookRequestSchemas['encounter-start'],
  hookRequestSchemas['order-select'],
  hookRequestSchemas['order-sign'],
]);

export type PatientViewRequest = z.infer<(typeof hookRequestSchemas)['patient-view']>;
export type EncounterStartRequest = z.infer<(typeof hookRequestSchemas)['encounter-start']>;
export type OrderSelectRequest = z.infer<(typeof hookRequestSchemas)['order-select']>;
export type OrderSignRequest = z.infer<(typeof hookRequestSchemas)['order-sign']>;
export type HookRequest = z.infer<typeof hookRequestSchema>;
export type HookContext = HookRequest['context'];

// ---------------------------------------------------------------------------------------------------------
// Response: https://cds-hooks.hl7.org/2.0/#cds-service-response
// ---------------------------------------------------------------------------------------------------------

const nonEmptyText = (maximum: number) => z.string().min(1).max(maximum);
const absoluteUrl = z.url({ protocol: /^https?$/ }).max(limits.url);

/** https://cds-hooks.hl7.org/2.0/#coding */
export const codingSchema = z.strictObject({
  code: nonEmptyText(limits.identifier),
  system: nonEmptyText(limits.url),
  display: nonEmptyText(limits.shortText).optional(),
});
export type CdsCoding = z.infer<typeof codingSchema>;

/** https://cds-hooks.hl7.org/2.0/#source */
export const sourceSchema = z.strictObject({
  label: nonEmptyText(limits.shortText),
  url: absoluteUrl.optional(),
  icon: absoluteUrl.optional(),
  topic: codingSchema.optional(),
});

const actionFields = {
  type: z.enum(['create', 'update', 'delete']),
  resource: fhirResourceSchema.optional(),
  resourceId: relativeReferenceSchema.optional(),
};

function checkActionTarget(action: { type: 'create' | 'update' | 'delete'; resource?: unknown; resourceId?: string | undefined }, context: z.core.$RefinementCtx): void {
  // https://cds-hooks.hl7.org/2.0/#action: create/update carry the whole resource; delete names it by resourceId.
  if (action.type !== 'delete' && action.resource === undefined) {
    context.addIssue({ code: 'custom', message: `a ${action.type} action needs a resource`, path: ['resource'] });
  }
  if (action.type === 'delete' && action.resourceId === undefined) {
    context.addIssue({ code: 'custom', message: 'a delete action needs a resourceId', path: ['resourceId'] });
  }
}

/** https://cds-hooks.hl7.org/2.0/#action */
export const actionSchema = z
  .strictObject({ ...actionFields, description: nonEmptyText(limits.shortText) })
  .superRefine(checkActionTarget);
export type CdsAction = z.infer<typeof actionSchema>;

/** https://cds-hooks.hl7.org/2.0/#system-action: an Action whose description is optional. */
export const systemActionSchema = z
  .strictObject({ ...actionFields, description: nonEmptyText(limits.shortText).optional() })
  .superRefine(checkActionTarget);
export type CdsSystemAction = z.infer<typeof systemActionSchema>;

/**
 * https://cds-hooks.hl7.org/2.0/#suggestion. `uuid` is optional in the spec; we require it because
 * feedback reports accepted suggestions by it.
 */
export const suggestionSchema = z.strictObject({
  label: nonEmptyText(limits.shortText),
  uuid: z.guid(),
  isRecommended: z.boolean().optional(),
  actions: z.array(actionSchema).min(1).max(limits.actions).optional(),
});
export type CdsSuggestion = z.infer<typeof suggestionSchema>;

/** https://cds-hooks.hl7.org/2.0/#link */
export const linkSchema = z
  .strictObject({
    label: nonEmptyText(limits.shortText),
    url: absoluteUrl,
    type: z.enum(['absolute', 'smart']),
    appContext: nonEmptyText(limits.detail).optional(),
  })
  .refine((link) => link.appContext === undefined || link.type === 'smart', {
    message: 'appContext is only valid on smart links',
    path: ['appContext'],
  });
export type CdsLink = z.infer<typeof linkSchema>;

/**
 * https://cds-hooks.hl7.org/2.0/#card-attributes. `uuid` is optional in the spec; we require it because
 * feedback names the card by it.
 */
export const cardSchema = z
  .strictObject({
    uuid: z.guid(),
    summary: nonEmptyText(limits.summary),
    detail: nonEmptyText(limits.detail).optional(),
    indicator: z.enum(['info', 'warning', 'critical']),
    source: sourceSchema,
    suggestions: z.array(suggestionSchema).min(1).max(limits.suggestions).optional(),
    selectionBehavior: z.enum(['at-most-one', 'any']).optional(),
    overrideReasons: z
      .array(codingSchema.required({ display: true }))
      .min(1)
      .max(limits.overrideReasons)
      .optional(),
    links: z.array(linkSchema).min(1).max(limits.links).optional(),
  })
  .refine((card) => card.suggestions === undefined || card.selectionBehavior !== undefined, {
    message: 'selectionBehavior is required when suggestions are present',
    path: ['selectionBehavior'],
  });
export type CdsCard = z.infer<typeof cardSchema>;

/** The body of a 200 answer to a hook call. */
export const hookResponseSchema = z.strictObject({
  cards: z.array(cardSchema).max(limits.cards),
  systemActions: z.array(systemActionSchema).min(1).max(limits.actions).optional(),
});
export type HookResponse = z.infer<typeof hookResponseSchema>;

/**
 * The body of a 200 answer as sent: JSON.stringify, without checking again what the card builders just built (that
 * check was about a quarter of a hook's CPU time). The builders write every field in the order of the schemas above,
 * so the bytes are those the schema-checked serialization gave; the hook tests assert, on every answer, that the body
 * passes `assertValidResponse` and equals JSON.stringify of its parse by `hookResponseSchema`.
 */
export function serializeHookResponse(response: HookResponse): string {
  return JSON.stringify(response);
}

// ---------------------------------------------------------------------------------------------------------
// Feedback: https://cds-hooks.hl7.org/2.0/#feedback
// ---------------------------------------------------------------------------------------------------------

// Read leniently: a client that leaves out the system still tells us which reason the user picked.
const feedbackCodingSchema = z.object({
  code: z.string().min(1).max(limits.identifier),
  system: z.string().max(limits.url).optional(),
  display: z.string().max(limits.shortText).optional(),
});

export const feedbackItemSchema = z
  .object({
    card: z.guid('must be the uuid of a card'),
    outcome: z.enum(['accepted', 'overridden']),
    acceptedSuggestions: z
      .array(z.object({ id: z.string().min(1).max(limits.identifier) }))
      .min(1)
      .max(limits.suggestions)
      .optional(),
    overrideReason: z
      .object({
        reason: feedbackCodingSchema.optional(),
        userComment: z.string().max(limits.userComment).optional(),
      })
      .optional(),
    // RFC 3339 §5.6; the spec asks for UTC but an explicit offset names the same instant, so it is accepted.
    outcomeTimestamp: z.iso.datetime({ offset: true }),
  })
  .refine((item) => item.outcome !== 'accepted' || item.acceptedSuggestions !== undefined, {
    message: 'acceptedSuggestions is required when the outcome is accepted',
    path: ['acceptedSuggestions'],
  });

export const feedbackRequestSchema = z.object({
  feedback: z.array(feedbackItemSchema).min(1).max(limits.feedbackItems),
});
export type FeedbackItem = z.infer<typeof feedbackItemSchema>;
export type FeedbackRequest = z.infer<typeof feedbackRequestSchema>;

// ---------------------------------------------------------------------------------------------------------
// The null-and-empty rule: https://cds-hooks.hl7.org/2.0/#null-and-empty-json-elements
// ---------------------------------------------------------------------------------------------------------

/** JSON paths of values the spec forbids: null, "", [] and {} (the top-level `cards: []` is allowed). */
export function findEmptyFields(value: unknown, path = '$'): string[] {
  if (value === null || value === undefined) return [path];
  if (typeof value === 'string') return value === '' ? [path] : [];
  if (Array.isArray(value)) {
    if (value.length === 0 && path !== '$.cards') return [path];
    return value.flatMap((item, index) => findEmptyFields(item, `${path}[${index}]`));
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return [path];
    // An explicit `undefined` is dropped by JSON.stringify, so it is not an empty field on the wire.
    return entries.filter(([, field]) => field !== undefined).flatMap(([key, field]) => findEmptyFields(field, `${path}.${key}`));
  }
  return [];
}

/** Throws unless `response` is a valid hook response with no null or empty field; for tests and debug checks. */
export function assertValidResponse(response: unknown): asserts response is HookResponse {
  const parsed = hookResponseSchema.safeParse(response);
  if (!parsed.success) {
    throw new Error(`Invalid CDS Hooks response:\n${z.prettifyError(parsed.error)}`);
  }
  const empty = findEmptyFields(response);
  if (empty.length > 0) {
    throw new Error(`CDS Hooks response has null or empty fields: ${empty.join(', ')}`);
  }
}
