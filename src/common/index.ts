// What two or more roles share and nothing else: the error catalogue, ids and generated
// secrets, logging, and time formats. It imports no other component.
export * from './errors.js';
export * from './ids.js';
export * from './logger.js';
export * from './time.js';
