// What a backup schedule's run (in the taskmanager) asks of the API's own admission of a backup
// or a verification, so that a scheduled one passes every check a request's passes. The API
// answers them (scheduledBackupStarter, scheduledVerificationStarter); src/main hands those to the
// taskmanager, which imports nothing of the API.

/** A backup of the schedule's instance, as its project would ask for one. */
export interface ScheduledBackupRequest {
  tenantId: string;
  instanceId: string;
  scheduleId: string;
  name: string;
  incremental: boolean;
}

/** A verification of a backup the schedule made. */
export interface ScheduledVerificationRequest {
  tenantId: string;
  backupId: string;
}
