// test-lane: parallel (scratch databases of its own on the shared servers)
import { serverDatabases } from '../support/server-databases.js';
import { readStatementsSuite } from './read-statements.suite.js';

// The statement counts on the shared MariaDB and PostgreSQL, each in a scratch database.
for (const [engine, scratch] of Object.entries(serverDatabases)) readStatementsSuite(engine, scratch);
