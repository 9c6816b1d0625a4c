import { guestContract, type GuestLogState, type RpcHandlers } from '../../src/bus/index.js';
import { CofferError, noEngineCapabilities } from '../../src/common/index.js';

// A guest that answers the lifecycle calls with nothing and every administrative call with
// OperationNotSupported, as an engine without those capabilities does; tests override what they need.

type GuestHandlers = RpcHandlers<typeof guestContract>;

const unsupported = async (): Promise<never> => {
  throw new CofferError('OperationNotSupported', 'Operation not supported by this fake guest.');
};

/** a log as a guest answers it: nothing published yet */
function fakeLog(name: string, type: GuestLogState['type'], status: GuestLogState['status']): GuestLogState {
  return { name, type, status, published: 0, pending: 0, stored: false };
}

export function fakeGuestHandlers(overrides: Partial<GuestHandlers> = {}): GuestHandlers {
  const noop = async () => ({});
  return {
    prepare: async () => {},
    restart: noop,
    stopDb: noop,
    startDb: noop,
    getFilesystemStats: async () => ({ totalBytes: 0, usedBytes: 0 }),
    resizeVolume: async ({ sizeGb }) => ({ totalBytes: sizeGb * 1024 ** 3, usedBytes: 0 }),
    resize: noop,
    updateAccess: noop,
    listDatabases: unsupported,
    createDatabases: unsupported,
    deleteDatabase: unsupported,
    listUsers: unsupported,
    createUsers: unsupported,
    deleteUser: unsupported,
    updateUser: unsupported,
    grantAccess: unsupported,
    revokeAccess: unsupported,
    enableRoot: unsupported,
    disableRoot: unsupported,
    applyConfiguration: unsupported,
    getConfiguration: unsupported,
    rotateCertificate: noop,
    createBackup: async () => {
      throw new CofferError('OperationNotSupported', 'Operation not supported by this fake guest.');
    },
    checkData: unsupported,
    addReplica: unsupported,
    removeReplica: unsupported,
    detachReplica: unsupported,
    getReplicationStatus: async () => ({ role: 'standalone' as const }),
    fenceSource: unsupported,
    followSource: unsupported,
    setSynchronous: unsupported,
    guestLogs: async () => ({ logs: [fakeLog('error', 'SYS', 'Ready'), fakeLog('general', 'USER', 'Disabled')] }),
    guestLogAction: async ({ name, enable, publish }) => {
      if (name !== 'general' && name !== 'error') throw new CofferError('BadRequest', `No log ${name} on this fake guest.`);
      const type = name === 'general' ? 'USER' : 'SYS';
      if (publish === true) return { log: { ...fakeLog(name, type, 'Published'), published: 10, stored: true } };
      return { log: fakeLog(name, type, enable === true ? 'Enabled' : type === 'USER' ? 'Disabled' : 'Ready') };
    },
    ...overrides,
  };
}

/** The capabilities of an engine that can do nothing optional. */
export { noEngineCapabilities as noCapabilities };
