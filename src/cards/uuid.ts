import { hash } from 'node:crypto';

/** RFC 9562 name-based uuid (version 5, SHA-1): the same names always give the same uuid. */
export function uuidV5(namespace: string, name: string): string {
  return uuidV5FromBytes(namespaceBytesOf(namespace), name);
}

function namespaceBytesOf(namespace: string): Buffer {
  const namespaceBytes = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (namespaceBytes.length !== 16) throw new RangeError('namespace must be a uuid');
  return namespaceBytes;
}

function uuidV5FromBytes(namespaceBytes: Buffer, name: string): string {
  const digest = hash('sha1', Buffer.concat([namespaceBytes, Buffer.from(name, 'utf8')]), 'buffer');
  digest[6] = (digest[6]! & 0x0f) | 0x50;
  digest[8] = (digest[8]! & 0x3f) | 0x80;
  const hex = digest.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const cohortCdsNamespace = namespaceBytesOf('8f6c2a3e-5b1d-4c7e-9a0f-3d2e1b4c5a69');

/**
 * Card and suggestion uuids for one hook call: derived from the hookInstance, the service and the rules
 * version, so a retried call yields the same uuids and feedback can be matched to what was shown.
 */
export function cardUuidFactory(serviceId: string, hookInstance: string, rulesVersion: number): (name: string) => string {
  // The call's namespace as bytes once, not once per card and suggestion.
  const callNamespace = namespaceBytesOf(uuidV5FromBytes(cohortCdsNamespace, `${serviceId}\n${hookInstance}\n${rulesVersion}`));
  return (name) => uuidV5FromBytes(callNamespace, name);
}
