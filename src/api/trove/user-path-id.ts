import type { UserRef } from '../../bus/index.js';

// The `{user}` of /users/{user} (reference 2.4): `name` or `name@host`, URL-encoded by clients
// (troveclient also encodes `.` as %2e). The router has already percent-decoded the segment
// once; decoding again would corrupt a `%` host. A user name may itself hold `@`, so the host
// starts after the last one; without any, the user is the one of every host, `%`.

export function parseUserPathId(id: string): UserRef {
  const at = id.lastIndexOf('@');
  return at < 0 ? { name: id, host: '%' } : { name: id.slice(0, at), host: id.slice(at + 1) };
}

export function userKey(user: UserRef): string {
  return `${user.name}@${user.host}`;
}
