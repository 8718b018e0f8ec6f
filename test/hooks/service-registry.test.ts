import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { findEmptyFields, hookNames } from '../../src/hooks/cds-hooks.schema.js';
import { createServiceRegistry, loadServiceRegistry } from '../../src/hooks/service-registry.js';
import { cdsHooksDirectory, findProjectRoot } from '../../src/paths.js';

function service(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'patient-view',
    hook: 'patient-view',
    title: 'Title',
    description: 'Description',
    prefetch: { patient: 'Patient/{{context.patientId}}' },
    ...overrides,
  };
}

describe('the registry in cds-hooks/services.json', () => {
  const registry = loadServiceRegistry();

  it('has one service per hook, each asking for the patient and the conditions', () => {
    expect(registry.services.map((definition) => [definition.id, definition.hook])).toEqual(hookNames.map((hook) => [hook, hook]));
    for (const definition of registry.services) {
      expect(definition.prefetch['patient']).toBe('Patient/{{context.patientId}}');
      expect(definition.prefetch['conditions']).toBe('Condition?patient={{context.patientId}}');
      expect(definition.prefetch['chiefComplaint']).toContain('code=http://loinc.org|8661-1');
      expect(definition.prefetch['acuity']).toContain('code=http://loinc.org|56839-4');
    }
  });

  it('serves a discovery document with no empty fields', () => {
    const document = registry.discoveryDocument();
    expect(document.services).toHaveLength(4);
    expect(findEmptyFields(document)).toEqual([]);
    expect(JSON.parse(JSON.stringify(document))).toEqual({ services: registry.services });
  });

  it('finds a service by id', () => {
    expect(registry.findService('encounter-start')?.hook).toBe('encounter-start');
    expect(registry.findService('nope')).toBeUndefined();
    expect(registry.findService('__proto__')).toBeUndefined();
  });

  it('is frozen', () => {
    expect(Object.isFrozen(registry.services)).toBe(true);
    expect(Object.isFrozen(registry.services[0]?.prefetch)).toBe(true);
  });
});

describe('findProjectRoot', () => {
  it('finds the folder with package.json from a nested folder', () => {
    const root = findProjectRoot();
    expect(existsSync(join(root, 'package.json'))).toBe(true);
    expect(findProjectRoot(join(root, 'src', 'hooks'))).toBe(root);
    expect(existsSync(join(cdsHooksDirectory, 'services.json'))).toBe(true);
  });
});

describe('createServiceRegistry', () => {
  it('accepts a minimal service', () => {
    expect(createServiceRegistry({ services: [service()] }).services).toHaveLength(1);
  });

  it.each([
    ['a missing patient key', service({ prefetch: { conditions: 'Condition?patient={{context.patientId}}' } }), /patient/],
    ['an unknown hook', service({ hook: 'patient-transmogrify' }), /hook/],
    ['a context field the hook does not have', service({ prefetch: { patient: 'Patient/{{context.patientId}}', orders: 'Bundle?y={{context.draftOrders}}' } }), /draftOrders/],
    ['an unsupported token', service({ prefetch: { patient: 'Patient/{{context.patientId}}', recent: 'Observation?date=gt{{today()}}' } }), /today/],
    ['an absolute template', service({ prefetch: { patient: 'https://elsewhere.example.org/Patient/{{context.patientId}}' } }), /relative/],
    ['a rooted template', service({ prefetch: { patient: '/Patient/{{context.patientId}}' } }), /relative/],
    ['a dot segment', service({ prefetch: { patient: 'Patient/../Practitioner/1' } }), /\.\./],
    ['an upper-case id', service({ id: 'Patient-View' }), /id/],
    ['an unknown field', service({ color: 'red' }), /color/],
  ])('rejects %s', (_name, definition, message) => {
    expect(() => createServiceRegistry({ services: [definition] })).toThrow(message);
  });

  it('rejects duplicate ids', () => {
    expect(() => createServiceRegistry({ services: [service(), service()] })).toThrow(/unique/);
  });

  it('allows order-select prefetch on its own context fields', () => {
    const definition = service({ id: 'order-select', hook: 'order-select', prefetch: { patient: 'Patient/{{context.patientId}}', user: 'Practitioner/{{userPractitionerId}}' } });
    expect(createServiceRegistry({ services: [definition] }).findService('order-select')).toBeDefined();
  });

  it('names the file when it cannot be read', () => {
    expect(() => loadServiceRegistry('/nonexistent/services.json')).toThrow(/\/nonexistent\/services\.json/);
  });
});
