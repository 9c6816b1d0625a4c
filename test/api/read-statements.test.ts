import { readStatementsSuite } from './read-statements.suite.js';

// The statement counts on SQLite, the embedded default (in memory: the count is the same on a file).
readStatementsSuite('SQLite', async () => ({ url: 'sqlite::memory:', drop: async () => {} }));
