import { describe, expect, it } from '@jest/globals';
import { fillPrefetchTemplate, isSupportedPrefetchToken, prefetchTokens, userTokensFromUserId } from '../../src/hooks/prefetch-template.js';

const context = { userId: 'Practitioner/prac-1', patientId: 'pt-1', encounterId: 'enc-1' };

describe('fillPrefetchTemplate', () => {
  it('fills context tokens in a read and a search', () => {
    expect(fillPrefetchTemplate('Patient/{{context.patientId}}', context)).toBe('Patient/pt-1');
    expect(fillPrefetchTemplate('Observation?patient={{context.patientId}}&encounter={{context.encounterId}}&code=http://loinc.org|8661-1&_sort=-date&_count=1', context)).toBe(
      'Observation?patient=pt-1&encounter=enc-1&code=http://loinc.org|8661-1&_sort=-date&_count=1',
    );
  });

  it('leaves a template without tokens as it is', () => {
    expect(fillPrefetchTemplate('Organization?active=true', context)).toBe('Organization?active=true');
  });

  it('tolerates spaces inside the braces', () => {
    expect(fillPrefetchTemplate('Patient/{{ context.patientId }}', context)).toBe('Patient/pt-1');
  });

  it('returns null when a context field is missing, empty or not a string', () => {
    expect(fillPrefetchTemplate('Encounter/{{context.encounterId}}', { patientId: 'pt-1' })).toBeNull();
    expect(fillPrefetchTemplate('Encounter/{{context.encounterId}}', { encounterId: '' })).toBeNull();
    expect(fillPrefetchTemplate('Bundle/{{context.draftOrders}}', { draftOrders: { resourceType: 'Bundle' } })).toBeNull();
    expect(fillPrefetchTemplate('Condition?patient={{context.patientId}}&x={{context.selections}}', { patientId: 'pt-1', selections: ['a'] })).toBeNull();
  });

  it('returns null for tokens it does not support (FHIRPath, today())', () => {
    expect(fillPrefetchTemplate('Medication?_id={{context.draftOrders.entry.resource.id}}', context)).toBeNull();
    expect(fillPrefetchTemplate('Observation?patient={{context.patientId}}&date=gt{{today() - 90 days}}', context)).toBeNull();
    expect(fillPrefetchTemplate('Patient/{{patientId}}', context)).toBeNull();
  });

  it('fills the user token that matches the type in context.userId and no other', () => {
    expect(fillPrefetchTemplate('Practitioner/{{userPractitionerId}}', context)).toBe('Practitioner/prac-1');
    expect(fillPrefetchTemplate('PractitionerRole?_id={{userPractitionerRoleId}}', context)).toBeNull();
    expect(fillPrefetchTemplate('PractitionerRole?_id={{userPractitionerRoleId}}&_include=PractitionerRole:practitioner', { userId: 'PractitionerRole/role-9' })).toBe(
      'PractitionerRole?_id=role-9&_include=PractitionerRole:practitioner',
    );
    expect(fillPrefetchTemplate('Patient/{{userPatientId}}', { userId: 'Patient/p-2' })).toBe('Patient/p-2');
    expect(fillPrefetchTemplate('RelatedPerson/{{userRelatedPersonId}}', { userId: 'RelatedPerson/rp-3' })).toBe('RelatedPerson/rp-3');
  });

  it('takes user tokens given explicitly over context.userId', () => {
    expect(fillPrefetchTemplate('Practitioner/{{userPractitionerId}}', context, { userPractitionerId: 'other' })).toBe('Practitioner/other');
    expect(fillPrefetchTemplate('Practitioner/{{userPractitionerId}}', context, {})).toBeNull();
  });

  it('percent-encodes values so they cannot add query parameters or path segments', () => {
    expect(fillPrefetchTemplate('Condition?patient={{context.patientId}}', { patientId: 'a&code=x,y' })).toBe('Condition?patient=a%26code%3Dx%2Cy');
    expect(fillPrefetchTemplate('Patient/{{context.patientId}}', { patientId: '../Practitioner/1' })).toBe('Patient/..%2FPractitioner%2F1');
    expect(fillPrefetchTemplate('Patient/{{context.patientId}}', { patientId: 'é 1' })).toBe('Patient/%C3%A9%201');
  });

  it('refuses the dot segments that encoding cannot neutralize', () => {
    expect(fillPrefetchTemplate('Patient/{{context.patientId}}', { patientId: '..' })).toBeNull();
    expect(fillPrefetchTemplate('Patient/{{context.patientId}}', { patientId: '.' })).toBeNull();
  });

  it('does not read inherited properties as context fields', () => {
    expect(fillPrefetchTemplate('Patient/{{context.constructor}}', {})).toBeNull();
    expect(fillPrefetchTemplate('Patient/{{context.toString}}', {})).toBeNull();
  });
});

describe('userTokensFromUserId', () => {
  it.each([
    ['Practitioner/abc', { userPractitionerId: 'abc' }],
    ['PractitionerRole/123', { userPractitionerRoleId: '123' }],
    ['Patient/p', { userPatientId: 'p' }],
    ['RelatedPerson/r', { userRelatedPersonId: 'r' }],
    ['Device/d', {}],
    ['abc', {}],
    [42, {}],
    [undefined, {}],
  ])('%j → %j', (userId, expected) => {
    expect(userTokensFromUserId(userId)).toEqual(expected);
  });
});

describe('prefetchTokens', () => {
  it('lists the tokens of a template and tells which are supported', () => {
    const tokens = prefetchTokens('Observation?patient={{context.patientId}}&performer={{userPractitionerId}}&date=gt{{today()}}');
    expect(tokens).toEqual(['context.patientId', 'userPractitionerId', 'today()']);
    expect(tokens.map(isSupportedPrefetchToken)).toEqual([true, true, false]);
  });
});
