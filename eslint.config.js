// Lint: typescript-eslint's recommended rules plus the import boundaries between components.
// A component is a folder under src/ with one index.ts; which component may import which
// follows the roles (ARCHITECTURE.md): the guest never imports the state DB, the API never
// imports an engine, nothing but src/main picks concrete adapters.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const components = ['agent', 'api', 'bus', 'cli', 'common', 'conductor', 'db', 'guest', 'main', 'metrics', 'taskmanager'];

const zone = (target, from, message) => ({ target: `./src/${target}`, from: `./src/${from}`, message });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'tmp/**'] },
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'off',
      'import-x/no-cycle': ['error', { maxDepth: 10 }],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            zone('common', '!(common)/**/*', 'common holds only shared leaves: it imports no component'),
            zone('metrics', '!(metrics|common)/**/*', 'metrics knows the roles only by the observer interfaces they declare'),
            zone('guest', 'db', 'the guest holds no state-database access; it reports through the conductor'),
            zone('guest', 'api', 'the guest does not depend on the API'),
            zone('guest', 'taskmanager', 'the guest does not depend on the taskmanager'),
            zone('guest', 'agent', 'the guest is hosted by the agent, not the other way round'),
            zone('agent', 'db', 'the agent reports through the conductor'),
            zone('agent', 'api', 'the agent does not depend on the API'),
            zone('api', 'guest', 'the API never imports an engine'),
            zone('api', 'agent', 'the API never imports a compute driver'),
            zone('api', 'taskmanager', 'the API casts to the taskmanager over the bus'),
            zone('taskmanager', 'api', 'the taskmanager does not depend on the API'),
            zone('taskmanager', 'guest', 'the taskmanager talks to guests over the bus'),
            zone('taskmanager', 'agent', 'the taskmanager talks to agents over the bus'),
            zone('conductor', 'api', 'the conductor does not depend on the API'),
            zone('conductor', 'guest', 'the conductor hears guests over the bus'),
            zone('cli', 'db', 'the CLI talks to the API like any client'),
            zone('cli', 'bus', 'the CLI talks to the API like any client'),
            zone('cli', 'guest', 'the CLI talks to the API like any client'),
            zone('cli', 'agent', 'the CLI talks to the API like any client'),
            zone('bus', 'db', 'the bus knows nothing of the state database'),
            zone('db', 'bus', 'the state database knows nothing of the bus'),
          ],
        },
      ],
    },
  },
  {
    // A component is a folder with one index.ts: other components import only that.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: components.flatMap((c) => [`**/${c}/**`, `!**/${c}/index.js`]),
              message: 'import another component only through its index.ts',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*'],
    // Tests read loosely typed JSON bodies; asserting on them is the point.
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
