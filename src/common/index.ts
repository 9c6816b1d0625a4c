// What two or more roles share and nothing else: the error catalogue, ids and generated
// secrets, logging, time formats, and what an engine version can do. It imports no other component.
export * from './configuration-values.js';
export * from './engine-capabilities.js';
export * from './engine-ports.js';
export * from './errors.js';
export * from './ids.js';
export * from './logger.js';
export * from './time.js';
export * from './cron-pattern.js';
export * from './scheduled-requests.js';
export * from './webhook-target.js';
export * from './byte-size.js';
export * from './primary-lease.js';
export * from './engine-metrics.js';
