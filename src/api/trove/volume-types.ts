// Coffer's one volume type: an instance's "volume" is its directory on the agent host's disk.
// Zed serves volume types only per datastore version (from Cinder); Coffer also answers
// GET /volume-types[/{id}], which troveclient still calls, with the same list.

export interface VolumeTypeView {
  id: string;
  name: string;
  is_public: boolean;
  description: string;
}

export const localVolumeType: Readonly<VolumeTypeView> = Object.freeze({
  id: '3f0c6a52-9a4b-4c55-8f3e-2d1b7a9e6c01',
  name: 'local',
  is_public: true,
  description: "The instance's directory on the local disk of the host it runs on.",
});

export const volumeTypes: readonly VolumeTypeView[] = [localVolumeType];
