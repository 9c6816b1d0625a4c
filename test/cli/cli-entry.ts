// The smallest `coffer` with only the client commands, for tests that run the CLI as a process.
import { Command } from 'commander';
import { registerClientCommands } from '../../src/cli/index.js';

const program = new Command('coffer');
registerClientCommands(program);
await program.parseAsync(process.argv);
