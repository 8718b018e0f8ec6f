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

/** Room for the namespace and a name of up to 256 UTF-16 units (at most 3 bytes each): every card and suggestion name. */
const scratch = Buffer.allocUnsafe(16 + 768);
/** The variant's hex digit for each value of the digest's: its two high bits set to 10 (RFC 9562 §4.1). */
const variantDigits = '89ab89ab89ab89ab';

/**
 * Hashes namespace and name from one reused buffer and sets the version and variant on the hex digits: a hook makes
 * a uuid per card and per suggestion, and the buffers of `Buffer.concat` and of the digest were half the cost. All of
 * it is synchronous, so the buffer is never shared between two calls.
 */
function uuidV5FromBytes(namespaceBytes: Buffer, name: string): string {
  let data: Buffer;
  if (name.length * 3 <= scratch.length - 16) {
    namespaceBytes.copy(scratch, 0);
    data = scratch.subarray(0, 16 + scratch.write(name, 16, 'utf8'));
  } else {
    data = Buffer.concat([namespaceBytes, Buffer.from(name, 'utf8')]);
  }
  const hex = hash('sha1', data, 'hex');
  // Version 5 in the high nibble of byte 6 (hex digit 12), the variant in the high bits of byte 8 (hex digit 16).
  return (
    hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-5' + hex.slice(13, 16) + '-' + variantDigits[parseInt(hex[16]!, 16)]! + hex.slice(17, 20) + '-' + hex.slice(20, 32)
  );
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
