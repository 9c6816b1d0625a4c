import type { FlavorRow, StateStore } from '../../db/index.js';

// Coffer has no Nova to own flavors: a small default set, shaped like Nova's m1 family. Disk
// sizes are 0 because storage comes from the instance's volume, as with Trove's volume support.
const defaults: FlavorRow[] = [
  { id: '1', name: 'm1.tiny', ramMb: 256, vcpus: 1, diskGb: 0, ephemeralGb: 0 },
  { id: '2', name: 'm1.small', ramMb: 512, vcpus: 1, diskGb: 0, ephemeralGb: 0 },
  { id: '3', name: 'm1.medium', ramMb: 1024, vcpus: 1, diskGb: 0, ephemeralGb: 0 },
  { id: '4', name: 'm1.large', ramMb: 2048, vcpus: 2, diskGb: 0, ephemeralGb: 0 },
  { id: '5', name: 'm1.xlarge', ramMb: 4096, vcpus: 4, diskGb: 0, ephemeralGb: 0 },
];

/** Idempotent: adds the default flavors that are missing and leaves existing ones as they are. */
export async function seedFlavors(store: StateStore): Promise<void> {
  for (const flavor of defaults) {
    if ((await store.flavors.get(flavor.id)) === undefined) await store.flavors.upsert(flavor);
  }
}
