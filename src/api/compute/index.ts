export { computePlugin } from './compute-plugin.js';
export type { ComputeDeps } from './compute-deps.js';
