// The api role: Coffer's HTTP front door. It serves the OpenStack Trove v1.0 API (so the trove
// and openstack clients work unchanged) and, under /identity, the Keystone v3 subset those
// clients need to get a token and a catalog. It reads the state store, writes only the rows a
// request creates, and hands long work to the taskmanager with a cast over the bus. With an
// external Keystone (keystone/), tokens are validated there and Coffer registers in its catalog.

export { buildApiServer, type ApiOptions, type HttpRequestObserver } from './build-api-server.js';
export { bootstrapIdentity } from './identity/bootstrap-identity.js';
export { seedFlavors } from './trove/seed-flavors.js';
export { connectKeystone, type ExternalIdentity, type ExternalKeystoneOptions } from './keystone/external-keystone.js';
export type { KeystoneInterface } from './keystone/keystone-client.js';
export { scheduledBackupStarter, type ScheduledBackupStarterOptions } from './scheduled-backup-starter.js';
export { scheduledVerificationStarter, type ScheduledVerificationStarterOptions } from './scheduled-verification-starter.js';
export { serviceApiStatus } from './trove/instance-status.js';
