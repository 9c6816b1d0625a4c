import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instanceStatus, operatingStatus, serviceApiStatus } from '../../src/api/trove/instance-status.js';
import type { ServiceStatusName, TaskStatusName } from '../../src/db/index.js';

test('a running task decides the status, whatever the guest reports', () => {
  const cases: [TaskStatusName, string][] = [
    ['BUILDING', 'BUILD'],
    ['BUILDING_ERROR_SERVER', 'ERROR'],
    ['BUILDING_ERROR_TIMEOUT_GA', 'ERROR'],
    ['DELETING_ERROR', 'ERROR'],
    ['UPDATING_ERROR_ACCESS', 'ERROR'],
    ['UPDATING', 'ACTIVE'],
    ['DELETING', 'SHUTDOWN'],
    ['REBOOTING', 'REBOOT'],
    ['RESIZING', 'RESIZE'],
    ['RESTART_REQUIRED', 'RESTART_REQUIRED'],
    // Coffer's stop and start: a stopped instance is SHUTOFF whatever the guest reports, and no backup shows over it
    ['STOPPING', 'STOPPING'],
    ['STOPPED', 'SHUTOFF'],
    ['STARTING', 'STARTING'],
    ['UPGRADING', 'UPGRADE'],
  ];
  for (const [task, expected] of cases) assert.equal(instanceStatus(task, 'HEALTHY'), expected, task);
  assert.equal(instanceStatus('STOPPED', 'SHUTDOWN', true), 'SHUTOFF');
});

test('with no task the service status stands in for the server status', () => {
  const cases: [ServiceStatusName | undefined, string][] = [
    ['HEALTHY', 'ACTIVE'],
    ['RUNNING', 'ACTIVE'],
    ['SHUTDOWN', 'SHUTDOWN'],
    ['CRASHED', 'SHUTDOWN'],
    ['PAUSED', 'SHUTDOWN'],
    ['FAILED', 'ERROR'],
    // reset_status: the host runs; operating_status tells the database's state is unknown
    ['UNKNOWN', 'ACTIVE'],
    ['NEW', 'BUILD'],
    ['BUILDING', 'BUILD'],
    [undefined, 'ERROR'],
  ];
  for (const [service, expected] of cases) assert.equal(instanceStatus('NONE', service), expected, String(service));
});

const now = new Date('2030-01-01T00:10:00Z');
const fresh = new Date('2030-01-01T00:09:30Z');
const stale = new Date('2030-01-01T00:08:00Z');

function op(task: TaskStatusName, status: ServiceStatusName, updatedAt = fresh): string {
  const service = { instanceId: 'i', status, updatedAt };
  return operatingStatus({ task, status: instanceStatus(task, status), service, now, heartbeatExpirySeconds: 90 });
}

test('operating_status is the service api status only with no task and an ACTIVE or SHUTDOWN instance', () => {
  assert.equal(op('NONE', 'HEALTHY'), 'HEALTHY');
  assert.equal(op('NONE', 'RUNNING'), 'ACTIVE');
  assert.equal(op('NONE', 'SHUTDOWN'), 'SHUTDOWN');
  assert.equal(op('NONE', 'CRASHED'), 'SHUTDOWN');
  assert.equal(op('NONE', 'BLOCKED'), 'BLOCKED');
  assert.equal(op('NONE', 'UNKNOWN'), 'ERROR', 'after reset_status, until the next heartbeat');
  assert.equal(op('NONE', 'NEW'), '');
  assert.equal(op('NONE', 'FAILED'), '');
  assert.equal(op('BUILDING', 'HEALTHY'), '');
  assert.equal(op('REBOOTING', 'HEALTHY'), '');
  assert.equal(op('DELETING', 'SHUTDOWN'), '');
  // a stopped instance rests: its guest's word shows, as with no task
  assert.equal(op('STOPPED', 'SHUTDOWN'), 'SHUTDOWN');
  assert.equal(op('STOPPED', 'SHUTDOWN', stale), 'ERROR', 'a silent guest');
  assert.equal(op('STOPPING', 'HEALTHY'), '');
  assert.equal(op('STARTING', 'HEALTHY'), '');
});

test('a heartbeat older than the expiry shows operating_status ERROR, except while a restart is required', () => {
  assert.equal(op('NONE', 'HEALTHY', stale), 'ERROR');
  assert.equal(op('NONE', 'SHUTDOWN', stale), 'ERROR');
  assert.equal(op('NONE', 'RESTART_REQUIRED', stale), 'RESTART_REQUIRED');
  // exactly at the limit is still fresh
  assert.equal(op('NONE', 'HEALTHY', new Date(now.getTime() - 90_000)), 'HEALTHY');
});

test('every service status has an api status (reference 3.1)', () => {
  assert.equal(serviceApiStatus.RUNNING, 'ACTIVE');
  assert.equal(serviceApiStatus.UNKNOWN, 'ERROR');
  assert.equal(serviceApiStatus.FAILED_TIMEOUT_GUESTAGENT, 'ERROR');
  assert.equal(serviceApiStatus.INSTANCE_READY, 'BUILD');
});
