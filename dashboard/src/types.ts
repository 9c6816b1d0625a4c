// What the dashboard reads of Trove's views (only the fields it shows).

export interface Link {
  id: string;
}

export interface Instance {
  id: string;
  name: string;
  status: string;
  operating_status?: string;
  created?: string;
  updated?: string;
  datastore?: { type?: string; version?: string };
  flavor?: { id?: string };
  volume?: { size?: number; used?: number };
  ip?: string[];
  hostname?: string;
  addresses?: Array<{ address: string; type?: string; port?: number }>;
  port?: number;
  fault?: { message?: string; created?: string } | null;
  replica_of?: Link | null;
  replicas?: Link[];
  access?: { is_public?: boolean; allowed_cidrs?: string[] } | null;
  tls?: { port?: number; required?: boolean } | null;
  locality?: string;
  configuration?: { id: string; name?: string } | null;
}

export interface ConfigurationGroup {
  id: string;
  name: string;
  description?: string | null;
  datastore_name?: string;
  datastore_version_name?: string;
  instance_count?: number;
  values?: Record<string, unknown>;
}

export interface Flavor {
  id: string;
  name: string;
  ram: number;
  vcpus?: number;
}

export interface Datastore {
  name: string;
  versions: Array<{ id: string; name: string; version?: string; active?: number | boolean }>;
  default_version?: string;
}

export interface InstanceEvent {
  id: string;
  type: string;
  name: string;
  message: string | null;
  created: string;
}
