/**
 * The one registry of CDS Services (cds-hooks/services.json): discovery and routing are both built from it.
 * https://cds-hooks.hl7.org/2.0/#discovery
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { cdsHooksDirectory } from '../paths.js';
import { hookContextSchemas, hookNames, type HookName } from './cds-hooks.schema.js';
import { isSupportedPrefetchToken, prefetchTokens } from './prefetch-template.js';

/** The prefetch key every service must declare: without the Patient there is nothing to match on. */
export const patientPrefetchKey = 'patient';

const prefetchTemplateSchema = z
  .string()
  .min(1)
  .max(1024)
  // Relative to fhirServer: an absolute or rooted template would let the registry send the token elsewhere.
  .regex(/^[A-Z][A-Za-z]+(?:[/?]|$)/, 'must be a relative FHIR read or search starting with a resource type')
  .refine((template) => !/(^|\/)\.\.?(\/|\?|$)/.test(template), 'must not contain . or .. path segments');

const serviceDefinitionSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be lower-case letters, digits and -'),
    hook: z.enum(hookNames),
    title: z.string().min(1).max(200),
    description: z.string().min(1).max(2000),
    prefetch: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/), prefetchTemplateSchema),
    usageRequirements: z.string().min(1).max(2000).optional(),
  })
  .superRefine((service, context) => {
    if (service.prefetch[patientPrefetchKey] === undefined) {
      context.addIssue({ code: 'custom', message: `needs a "${patientPrefetchKey}" prefetch key`, path: ['prefetch'] });
    }
    const contextFields = new Set(Object.keys(hookContextSchemas[service.hook].shape));
    for (const [key, template] of Object.entries(service.prefetch)) {
      for (const token of prefetchTokens(template)) {
        const field = /^context\.(.+)$/.exec(token)?.[1];
        if (!isSupportedPrefetchToken(token) || (field !== undefined && !contextFields.has(field))) {
          context.addIssue({ code: 'custom', message: `token {{${token}}} is not a ${service.hook} context field or user token`, path: ['prefetch', key] });
        }
      }
    }
  });

const registryFileSchema = z
  .strictObject({ services: z.array(serviceDefinitionSchema).min(1) })
  .refine((file) => new Set(file.services.map((service) => service.id)).size === file.services.length, 'service ids must be unique');

export interface ServiceDefinition {
  readonly id: string;
  readonly hook: HookName;
  readonly title: string;
  readonly description: string;
  /** prefetch key → template. */
  readonly prefetch: Readonly<Record<string, string>>;
  readonly usageRequirements?: string;
}

/** The body of `GET {baseUrl}/cds-services`. */
export interface DiscoveryDocument {
  readonly services: readonly ServiceDefinition[];
}

export interface ServiceRegistry {
  readonly services: readonly ServiceDefinition[];
  /** `{ services: [...] }` for the discovery endpoint. */
  discoveryDocument(): DiscoveryDocument;
  findService(id: string): ServiceDefinition | undefined;
}

/** Builds a registry from already-parsed JSON; throws an Error naming every problem. */
export function createServiceRegistry(json: unknown, sourceName = 'services.json'): ServiceRegistry {
  const parsed = registryFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`Invalid CDS service registry ${sourceName}:\n${z.prettifyError(parsed.error)}`);
  }
  const services: readonly ServiceDefinition[] = Object.freeze(
    parsed.data.services.map((service) => Object.freeze({ ...service, prefetch: Object.freeze({ ...service.prefetch }) })),
  );
  const byId = new Map(services.map((service) => [service.id, service]));
  const discovery: DiscoveryDocument = Object.freeze({ services });
  return Object.freeze({
    services,
    discoveryDocument: () => discovery,
    findService: (id: string) => byId.get(id),
  });
}

/** Reads and validates cds-hooks/services.json (or the file given). */
export function loadServiceRegistry(file: string = join(cdsHooksDirectory, 'services.json')): ServiceRegistry {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the CDS service registry ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return createServiceRegistry(json, file);
}
